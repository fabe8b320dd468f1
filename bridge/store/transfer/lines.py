"""A row's canonical form: its line in PostgreSQL's COPY text format, rendered by the source's SQL.

The same bytes are what COPY FROM loads into the target and what the target's own COPY TO prints
back, so the copy needs no per-value work in Python and the verification compares what each
database itself says it holds:

* key columns first, then the others in the table's order, separated by a tab, one row per line;
* NULL is `\\N`; integers and decimals in plain decimal; booleans `t`/`f`;
* timestamps `YYYY-MM-DD HH:MM:SS[.ffffff]` with trailing zeros of the fraction dropped, as
  PostgreSQL prints them with DateStyle ISO. The bridge stores naive UTC on every backend
  (DATETIME(6) on MariaDB, text on SQLite, `timestamp without time zone` on PostgreSQL): no column
  depends on a session time zone and no value is converted;
* text as UTF-8 with COPY's escapes (`\\\\`, `\\n`, `\\r`, `\\t`, `\\b`, `\\f`, `\\v`), so 4-byte
  characters, accents and long bodies pass as bytes; bytes as `\\\\x` + hex.
"""

from __future__ import annotations

import sqlalchemy as sa

# What PostgreSQL's COPY TO escapes in text, in the order the source must replace them
# (the backslash first, so the escapes added afterwards are not escaped again).
ESCAPES = [(92, "\\\\"), (10, "\\n"), (13, "\\r"), (9, "\\t"), (8, "\\b"), (12, "\\f"), (11, "\\v")]


class UnsupportedColumn(Exception):
    pass


def _base(type_: sa.types.TypeEngine) -> sa.types.TypeEngine:
    while isinstance(type_, sa.TypeDecorator):
        type_ = type_.impl_instance
    return type_


def kind(column: sa.Column) -> str:
    type_ = _base(column.type)
    if isinstance(type_, sa.Boolean):
        return "bool"
    if isinstance(type_, sa.Integer):
        return "int"
    if isinstance(type_, sa.DateTime):
        return "datetime"
    if isinstance(type_, sa.Date):
        return "date"
    if isinstance(type_, (sa.String, sa.JSON, sa.Enum)):  # Text, Unicode, … are Strings
        return "text"
    if isinstance(type_, sa.Numeric) and not isinstance(type_, sa.Float):
        return "numeric"
    if isinstance(type_, sa.LargeBinary):
        return "bytes"
    raise UnsupportedColumn(f"{column.table.name}.{column.name}: {type_!r} has no exact text form across databases")


def ordered_columns(table: sa.Table) -> list[sa.Column]:
    keys = list(table.primary_key.columns)
    return keys + [c for c in table.columns if c not in keys]


class Dialect:
    """How one source database renders the canonical line."""

    name = ""

    def __init__(self, preparer: sa.sql.compiler.IdentifierPreparer):
        self.quote = preparer.quote

    def char(self, code: int) -> str:
        raise NotImplementedError

    def concat(self, parts: list[str]) -> str:
        raise NotImplementedError

    def text(self, column: str) -> str:
        expr = column
        for code, escape in ESCAPES:
            expr = f"REPLACE({expr}, {self.char(code)}, {self.literal(escape)})"
        return expr

    def literal(self, value: str) -> str:
        """A string literal without backslashes in the SQL (sql_mode NO_BACKSLASH_ESCAPES or not)."""
        return self.concat([self.char(ord(c)) if c == "\\" else f"'{c}'" for c in value]) if "\\" in value \
            else f"'{value}'"

    def value(self, column: sa.Column) -> str:
        name = self.quote(column.name)
        kind_ = kind(column)
        null = self.literal("\\N")
        if kind_ == "bool":
            return f"CASE WHEN {name} IS NULL THEN {null} WHEN {name} THEN 't' ELSE 'f' END"
        rendered = {"int": self.integer, "numeric": self.integer, "datetime": self.datetime, "date": self.date,
                    "text": self.text, "bytes": self.bytes_}[kind_](name)
        return f"COALESCE({rendered}, {null})"

    def line(self, table: sa.Table) -> str:
        parts: list[str] = []
        for i, column in enumerate(ordered_columns(table)):
            if i:
                parts.append(self.char(9))
            parts.append(self.value(column))
        return self.finish(self.concat(parts))

    def finish(self, expr: str) -> str:
        return expr

    def integer(self, name: str) -> str:
        raise NotImplementedError

    def datetime(self, name: str) -> str:
        raise NotImplementedError

    def date(self, name: str) -> str:
        raise NotImplementedError

    def bytes_(self, name: str) -> str:
        raise NotImplementedError

    def key_order(self, column: sa.Column) -> str:
        return self.quote(column.name)


class MariaDB(Dialect):
    """Everything as bytes: the escapes are ASCII bytes, which never occur inside a multi-byte
    UTF-8 character, and REPLACE on binary strings compares bytes (on utf8mb4 strings it walks
    characters, which made the server's share of a copy several times larger)."""

    name = "mysql"

    def char(self, code: int) -> str:
        return f"X'{code:02X}'"

    def literal(self, value: str) -> str:
        return "X'" + value.encode("utf-8").hex().upper() + "'"

    def concat(self, parts: list[str]) -> str:
        return f"CONCAT({', '.join(parts)})"

    def text(self, column: str) -> str:
        return super().text(f"CAST({column} AS BINARY)")

    def finish(self, expr: str) -> str:
        return f"CAST({expr} AS BINARY)"  # UTF-8 bytes: the driver hands them over undecoded

    def integer(self, name: str) -> str:
        return f"CAST({name} AS CHAR)"

    def datetime(self, name: str) -> str:
        return f"TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM DATE_FORMAT({name}, '%Y-%m-%d %H:%i:%s.%f')))"

    def date(self, name: str) -> str:
        return f"DATE_FORMAT({name}, '%Y-%m-%d')"

    def bytes_(self, name: str) -> str:
        return self.concat([self.literal("\\\\x"), f"LOWER(HEX({name}))"])

    def key_order(self, column: sa.Column) -> str:
        # By code point, like PostgreSQL's "C" collation (the default collation ignores case).
        quoted = self.quote(column.name)
        return f"{quoted} COLLATE utf8mb4_bin" if kind(column) == "text" else quoted


class SQLite(Dialect):
    name = "sqlite"

    def char(self, code: int) -> str:
        return f"char({code})"

    def concat(self, parts: list[str]) -> str:
        return "(" + " || ".join(parts) + ")"

    def literal(self, value: str) -> str:
        return "'" + value.replace("'", "''") + "'"  # SQLite literals have no backslash escapes

    def integer(self, name: str) -> str:
        return f"CAST({name} AS TEXT)"

    def datetime(self, name: str) -> str:
        # SQLAlchemy stores 'YYYY-MM-DD HH:MM:SS.ffffff'; drop the fraction's trailing zeros.
        return f"CASE WHEN instr({name}, '.') > 0 THEN rtrim(rtrim({name}, '0'), '.') ELSE {name} END"

    def date(self, name: str) -> str:
        return name

    def bytes_(self, name: str) -> str:
        return f"('\\\\x' || lower(hex({name})))"


def for_engine(engine: sa.Engine) -> Dialect:
    if engine.dialect.name in ("mysql", "mariadb"):
        return MariaDB(engine.dialect.identifier_preparer)
    if engine.dialect.name == "sqlite":
        return SQLite(engine.dialect.identifier_preparer)
    raise UnsupportedColumn(f"sources on {engine.dialect.name} are not supported (SQLite or MariaDB/MySQL)")


def key_text(line: bytes, keys: int) -> bytes:
    """The key fields of a canonical line, as text (equal keys, equal text)."""
    return b"\t".join(line.split(b"\t", keys)[:keys])
