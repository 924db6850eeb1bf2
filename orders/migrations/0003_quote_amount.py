from decimal import Decimal

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0002_iceberg"),
    ]

    operations = [
        migrations.AlterField(
            model_name="order",
            name="amount",
            field=models.DecimalField(blank=True, decimal_places=20, max_digits=40, null=True),
        ),
        migrations.AddField(
            model_name="order",
            name="quote_amount",
            field=models.DecimalField(blank=True, decimal_places=20, max_digits=40, null=True),
        ),
        migrations.AddField(
            model_name="order",
            name="cost",
            field=models.DecimalField(decimal_places=20, default=Decimal("0"), max_digits=40),
        ),
        migrations.AddConstraint(
            model_name="order",
            constraint=models.CheckConstraint(
                condition=models.Q(amount__isnull=False) | models.Q(quote_amount__isnull=False),
                name="order_amount_or_quote_amount",
            ),
        ),
    ]
