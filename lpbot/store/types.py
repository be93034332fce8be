"""Column types that keep money exact and time in UTC on every engine.

``Amount``: a raw token amount or wei value, a Python ``int``, stored as ``NUMERIC(78, 0)`` (78
digits hold any uint256 and int256). SQLite's NUMERIC affinity turns integers past 64 bits into
REAL, so there the column is ``VARCHAR(79)`` holding the decimal digits: exact, but not for SQL
arithmetic or ordering. ``ExactDecimal``: an exchange quantity or price (``Decimal``), stored as
``NUMERIC(78, 18)``, text on SQLite for the same reason. ``UTCDateTime``: an aware ``datetime``,
stored in UTC and read back aware; naive values are refused.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Context, Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Integer, Numeric, String
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["ID", "MAX_DIGITS", "Amount", "ExactDecimal", "UTCDateTime"]

MAX_DIGITS = 78
_AMOUNT_LIMIT = 10**MAX_DIGITS
_DECIMAL_SCALE = 18
_CONTEXT = Context(prec=2 * MAX_DIGITS)  # exact for every value the columns hold

# surrogate keys: BIGINT, but INTEGER on SQLite, where only INTEGER PRIMARY KEY autoincrements
ID = BigInteger().with_variant(Integer(), "sqlite")


class Amount(TypeDecorator[int]):
    """An exact integer amount in the token's smallest unit (``int``; never float or Decimal)."""

    impl = Numeric(MAX_DIGITS, 0)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(MAX_DIGITS + 1))
        return dialect.type_descriptor(Numeric(MAX_DIGITS, 0, asdecimal=True))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"amounts are int, got {type(value).__name__} {value!r}")
        if not -_AMOUNT_LIMIT < value < _AMOUNT_LIMIT:
            raise ValueError(f"amount {value} has more than {MAX_DIGITS} digits")
        return str(value) if dialect.name == "sqlite" else Decimal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if isinstance(value, int):
            return value
        number = Decimal(value)
        if number != number.to_integral_value():
            raise ValueError(f"stored amount {value!r} is not an integer")
        return int(number)


class ExactDecimal(TypeDecorator[Decimal]):
    """An exact decimal (exchange quantities and prices), at most 18 decimal places."""

    impl = Numeric(MAX_DIGITS, _DECIMAL_SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(MAX_DIGITS + 2))
        return dialect.type_descriptor(Numeric(MAX_DIGITS, _DECIMAL_SCALE, asdecimal=True))

    def process_bind_param(self, value: Decimal | int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, Decimal | int):
            raise TypeError(f"exact decimals are Decimal or int, got {type(value).__name__}")
        number = Decimal(value)
        if not number.is_finite():
            raise ValueError(f"exact decimals are finite, got {number}")
        exponent = number.normalize(_CONTEXT).as_tuple().exponent
        if isinstance(exponent, int) and exponent < -_DECIMAL_SCALE:
            raise ValueError(f"{number} has more than {_DECIMAL_SCALE} decimal places")
        if abs(number) >= Decimal(10) ** (MAX_DIGITS - _DECIMAL_SCALE):
            raise ValueError(f"{number} is too large for NUMERIC({MAX_DIGITS}, {_DECIMAL_SCALE})")
        return format(number, "f") if dialect.name == "sqlite" else number

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return _plain(Decimal(value))


def _plain(number: Decimal) -> Decimal:
    """``number`` without trailing zeros and without an exponent (``1.500`` -> ``1.5``, ``1E+2``
    -> ``100``), so values read back look the same on every engine."""
    number = number.normalize(_CONTEXT)
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        return number.quantize(Decimal(1), context=_CONTEXT)
    return number


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime, stored in UTC (``TIMESTAMP WITH TIME ZONE``; naive UTC on SQLite)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"datetimes must be timezone-aware, got naive {value.isoformat()}")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
