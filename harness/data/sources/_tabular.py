"""What the `hub` and `local` sources share: the adapter fields, their
validation, and turning a loaded `datasets.Dataset` into canonical examples."""

from __future__ import annotations

from harness.data.formats import FORMATS, adapt
from harness.errors import FieldError


def check_format(format_name: str, kind: str | None) -> None:
    try:
        fmt = FORMATS.get(format_name)
    except KeyError as err:
        raise FieldError("format", err.args[0]) from None
    if kind is not None and kind not in fmt.kinds:
        raise FieldError("kind", f"format '{format_name}' gives {', '.join(k for k in fmt.kinds if k != 'auto')}, "
                                 f"not {kind}")


def examples(dataset, source, ctx):
    """Rows of a loaded dataset (first `limit` of them) through the source's format adapter."""
    if source.limit is not None:
        dataset = dataset.select(range(min(source.limit, len(dataset))))
    columns = list(dataset.column_names)

    def rows():
        for batch in dataset.iter(batch_size=1024):
            for i in range(len(batch[columns[0]])):
                yield {c: batch[c][i] for c in columns}

    yield from adapt(rows(), columns, source.format, source.kind, source.display_name, ctx)
