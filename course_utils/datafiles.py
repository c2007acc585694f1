"""One door for structured files: JSON, notebooks and CSV tables, checked before any use.

Covers: :func:`read_json` (bounded size and nesting: a file of 100,000 nested
brackets is one clear error, not a ``RecursionError``), :func:`read_notebook` (a
regular file of bounded size, nbformat 4 JSON that passes nbformat's own schema,
so cell sources are text and metadata are objects), :func:`decode_text` (UTF-8,
UTF-8 with a BOM, UTF-16 and UTF-32 with a BOM, and the Windows code page 1252
that Excel writes on Western European Windows) and :func:`read_table` (a CSV table
in any of those encodings, separated by commas, semicolons or tabs as spreadsheets
write it, with the columns the caller needs and fields of bounded size). Each
refusal is a :class:`~course_utils.errors.CourseError` that names the file, what
is wrong and the next step. The files are found through ``paths.py``. Does not
cover: ONNX files (``onnx_files.py``), nor what each caller then checks in the
data (a grades file's fields: ``grading/pages.py``).
"""
from __future__ import annotations

import codecs
import csv
import io
import json
import warnings

from .errors import CourseError
from .paths import read_bytes, shown

__all__ = ["DataFileError", "read_json", "nesting_depth", "read_notebook", "decode_text",
           "read_table", "MAX_FIELD_CHARS"]

#: The longest field of a CSV table (Python's csv module stops at 128 KiB, too).
MAX_FIELD_CHARS = 128 * 1024


class DataFileError(CourseError, ValueError):
    """A file that is there but does not hold what the command needs."""


def nesting_depth(value, limit: int) -> int:
    """How deeply lists and dicts nest in ``value`` (a number: 0, ``[1]``: 1), counted level by
    level without recursion, and only up to ``limit + 1``."""
    depth, level = 0, [value]
    while True:
        containers = [v for v in level if isinstance(v, (list, dict))]
        if not containers or depth > limit:
            return depth
        depth += 1
        level = [child for v in containers for child in (v.values() if isinstance(v, dict) else v)]


def _parse_json(text: str, where: str, what: str, max_depth: int, next_step: str):
    try:
        value = json.loads(text)
    except RecursionError:  # json's C decoder counts its own nesting: nothing is left half-done
        raise DataFileError(f"{where} nests its JSON deeper than Python can read; a {what} "
                            f"nests at most {max_depth} levels: {next_step}") from None
    except ValueError as error:
        raise DataFileError(f"{where} is not valid JSON ({str(error)[:200]}); {next_step}") from None
    depth = nesting_depth(value, max_depth)
    if depth > max_depth:
        raise DataFileError(f"{where} nests its JSON more than {max_depth} levels deep, which no "
                            f"{what} does; {next_step}")
    return value


def read_json(path, what: str, *, max_bytes: int, max_depth: int, next_step: str,
              missing_hint: str = "check the path"):
    """The value of a JSON file (UTF-8), of at most ``max_bytes`` and ``max_depth`` levels.

    Args:
        path: the file; it goes through :func:`course_utils.paths.read_bytes`.
        what: what it should be, for messages ("grades file").
        max_bytes, max_depth: the bounds; larger or deeper files are refused.
        next_step: what to do when the file does not parse, e.g. "give the file
            of grade --json".
        missing_hint: what to do when there is no file.

    Raises:
        DataFileError: not UTF-8, not JSON, or nested too deeply (a ``ValueError``).
        MissingFileError, BadPathError: see :func:`course_utils.paths.input_file`.
    """
    data = read_bytes(path, what, max_bytes=max_bytes, missing_hint=missing_hint)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataFileError(f"{shown(path)} is not UTF-8 text (byte {error.start:,}); "
                            f"{next_step}") from None
    return _parse_json(text, shown(path), what, max_depth, next_step)


#: How deeply a notebook's JSON may nest (outputs of rich displays reach about 20).
MAX_NOTEBOOK_DEPTH = 100


def read_notebook(path, what: str = "notebook", *, max_bytes: int, next_step: str,
                  where: str | None = None):
    """A notebook file as nbformat 4, validated against nbformat's schema before any use.

    After this, every cell's ``source`` is text and every ``metadata`` an object
    (the schema says so); keys the schema leaves open (a notebook's own
    metadata entries) keep whatever type the file gave them.

    Raises:
        DataFileError: not UTF-8 JSON, nested too deeply, not nbformat 4, or
            not valid against nbformat's schema (a ``ValueError``).
        MissingFileError, BadPathError: see :func:`course_utils.paths.input_file`.
    """
    import nbformat
    from nbformat.validator import normalize

    where = where or shown(path)
    data = read_bytes(path, what, max_bytes=max_bytes)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataFileError(f"{where} is not UTF-8 text (byte {error.start:,}), so not a "
                            f"notebook; {next_step}") from None
    payload = _parse_json(text, where, what, MAX_NOTEBOOK_DEPTH, next_step)
    if not isinstance(payload, dict) or payload.get("nbformat") != 4:
        found = (f"nbformat {str(payload.get('nbformat'))[:20]!r}" if isinstance(payload, dict)
                 else f"a JSON {type(payload).__name__}")
        raise DataFileError(f"{where} is not an nbformat 4 notebook ({found}); {next_step}")
    cells = payload.get("cells")
    if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
        raise DataFileError(f"{where} is not a valid nbformat 4 notebook (its 'cells' are not a "
                            f"list of cells); {next_step}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nbformat warns about what it repairs or refuses
            _, payload = normalize(payload)  # missing cell ids are added, as JupyterLab does
            nbformat.validate(payload)  # raises; nbformat.reads would only log it
            return nbformat.reads(json.dumps(payload), as_version=4)
    except (nbformat.ValidationError, KeyError, TypeError, ValueError, AttributeError,
            RecursionError) as error:
        message = str(getattr(error, "message", error)).splitlines()[0][:160] if str(error) else \
            type(error).__name__
        at = "/".join(map(str, getattr(error, "absolute_path", ())))
        raise DataFileError(f"{where} is not a valid nbformat 4 notebook ("
                            f"{f'at {at}: ' if at else ''}{message}); {next_step}") from None


def decode_text(data: bytes, where: str, next_step: str) -> tuple[str, str]:
    """Text and the name of its encoding: UTF-8 (with or without a BOM), UTF-16 or UTF-32 with a
    BOM, else the Windows code page 1252 that Excel uses for "CSV" on Western Windows.

    Raises:
        DataFileError: none of them decodes the bytes (a ``ValueError``).
    """
    for bom, codec, name in ((codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),
                             (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
                             (codecs.BOM_UTF8, "utf-8-sig", "UTF-8 with a BOM"),
                             (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
                             (codecs.BOM_UTF16_BE, "utf-16", "UTF-16")):
        if data.startswith(bom):
            try:
                return data.decode(codec), name
            except UnicodeDecodeError as error:
                raise DataFileError(f"{where} starts as {name} text but breaks at byte "
                                    f"{error.start:,}; {next_step}") from None
    for codec, name in (("utf-8", "UTF-8"), ("cp1252", "Windows-1252")):
        try:
            return data.decode(codec), name
        except UnicodeDecodeError:
            continue
    raise DataFileError(f"{where} is neither UTF-8, UTF-16 nor Windows-1252 text; save it as "
                        f"\"CSV UTF-8\" (Excel) or UTF-8 (any editor), then {next_step}")


def read_table(path, what: str, *, columns: list[str], max_bytes: int, next_step: str,
               missing_hint: str = "check the path") -> list[dict[str, str]]:
    """The rows of a CSV table with at least ``columns``, as spreadsheets save it.

    Comma, semicolon (Excel where the decimal mark is a comma) and tab separated
    files are read; the encoding is found by :func:`decode_text`. Each row is a
    dict of the header's columns; missing cells are empty strings.

    Raises:
        DataFileError: an encoding it cannot read, a missing column, a field of
            more than 128 KiB, or a row the csv module cannot read (a NUL byte).
        MissingFileError, BadPathError: see :func:`course_utils.paths.input_file`.
    """
    where = shown(path)
    text, _ = decode_text(read_bytes(path, what, max_bytes=max_bytes, missing_hint=missing_hint),
                          where, next_step)
    header = text.lstrip("\ufeff").split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=header.count)
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""), delimiter=delimiter)
    try:
        fields = [name.strip() if isinstance(name, str) else "" for name in reader.fieldnames or []]
        missing = [c for c in columns if c not in fields]
        if missing:
            raise DataFileError(f"{where} lacks the column(s) {missing}; a {what} has the columns "
                                f"{columns} in its first line; {next_step}")
        reader.fieldnames = fields
        rows = []
        for row in reader:
            rows.append({key: value if isinstance(value, str) else "" for key, value in row.items()
                         if isinstance(key, str)})
    except csv.Error as error:
        line = reader.line_num
        too_long = "field larger than field limit" in str(error)
        reason = (f"a field of more than {MAX_FIELD_CHARS // 1024} KiB, which no {what} holds"
                  if too_long else str(error))
        raise DataFileError(f"{where}, line {line:,}: {reason}; {next_step}") from None
    return rows
