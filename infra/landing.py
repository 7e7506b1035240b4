"""What a landed file must be before any row of it is read: complete, UTF-8, of the right kind.

A file that fails here is refused whole (``LandingRefusedError``, naming the file and the
problem): its rows cannot be trusted one by one, so none is read. Row-level problems (a short
line, a value of the wrong type) are not this module's: they reach silver's quarantine with a
reason. Local landing zones only; on an object store the checks are skipped.
"""

import codecs
import csv
import io
from dataclasses import dataclass
from pathlib import Path

# The names a contract's files may have; anything else in a landing folder is refused (a transfer
# still in progress under a temporary name, or a file that does not belong there).
EXTENSIONS = {
    "csv": (".csv",),
    "jsonl": (".jsonl", ".json"),
    "parquet": (".parquet",),
    # Documents (PDFs and scans) are checked one by one when read: a file that cannot be opened
    # is quarantined alone (transforms/documents.py), but a stray name still refuses the date.
    "documents": (".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff"),
}
_PARQUET_MAGIC = b"PAR1"
_BLOCK = 1 << 20


class LandingRefusedError(ValueError):
    """A landed file cannot be read as its contract declares; nothing of it was read."""


@dataclass(frozen=True)
class LandedFile:
    """A data file of a landing folder, checked; ``header`` for CSV (BOM removed)."""

    path: Path
    size: int
    header: tuple[str, ...] = ()
    complete: bool = True


def is_data_file(path: Path) -> bool:
    """Whether a folder entry is a delivery at all (hidden and ``_``-prefixed markers are not)."""
    return path.is_file() and not path.name.startswith((".", "_"))


def in_progress_files(folder: Path, file_format: str) -> list[Path]:
    """Entries that are not files of the format: a temporary name while a transfer runs."""
    if not folder.is_dir():
        return []
    # Scanners and mail gateways write .PDF and .JPG: a document's extension is read in any case.
    fold = str.lower if file_format == "documents" else str
    return sorted(
        p
        for p in folder.iterdir()
        if is_data_file(p) and not fold(p.name).endswith(EXTENSIONS[file_format])
    )


def _utf8_problem(path: Path) -> str | None:
    """Why the file is not UTF-8 text (None when it is), read in blocks."""
    with path.open("rb") as handle:
        head = handle.read(4)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return (
                "is UTF-16 (it starts with a UTF-16 byte order mark); the contract requires UTF-8"
            )
        handle.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        offset, line = 0, 1
        for block in iter(lambda: handle.read(_BLOCK), b""):
            if b"\x00" in block:
                at = offset + block.index(b"\x00")
                return (
                    f"holds NUL bytes (first at byte {at}): UTF-16 or binary, "
                    "not the UTF-8 text the contract requires"
                )
            try:
                decoder.decode(block)
            except UnicodeDecodeError as error:
                at = offset + error.start
                line += block[: error.start].count(b"\n")
                return (
                    f"is not UTF-8: byte 0x{block[error.start]:02X} at byte {at} (line {line}) "
                    "is not valid UTF-8 (Latin-1 or Windows-1252?); the contract requires UTF-8"
                )
            line += block.count(b"\n")
            offset += len(block)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "is not UTF-8: it ends inside a multi-byte character (cut short?)"
    return None


def _ends_with_line_break(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, io.SEEK_END)
        return handle.read(1) in (b"\n", b"\r")


def _is_complete_parquet(path: Path, size: int) -> bool:
    if size < 2 * len(_PARQUET_MAGIC):
        return False
    with path.open("rb") as handle:
        start = handle.read(len(_PARQUET_MAGIC))
        handle.seek(-len(_PARQUET_MAGIC), io.SEEK_END)
        return start == _PARQUET_MAGIC and handle.read(len(_PARQUET_MAGIC)) == _PARQUET_MAGIC


def _csv_header(path: Path) -> tuple[str, ...]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return tuple(next(csv.reader(handle), []))


def refuse_strays(folder: Path, file_format: str) -> None:
    """Refuse a folder holding any file not named as the format's (``LandingRefusedError``)."""
    strays = in_progress_files(folder, file_format)
    if strays:
        names = ", ".join(p.name for p in strays)
        raise LandingRefusedError(
            f"{folder}: {names}: not a {'/'.join(EXTENSIONS[file_format])} file: a transfer "
            "still in progress under a temporary name, or a misplaced file; refused until it "
            "is renamed or removed"
        )


def check_landed_files(folder: Path, file_format: str) -> list[LandedFile]:
    """The folder's data files, each checked; raise on the first that must be refused.

    Refused: a file whose name is not the format's (still being transferred?); a 0-byte CSV or
    Parquet file (a CSV day without rows is its header line; a JSON-lines file of 0 bytes has no
    rows and is skipped); text that is not UTF-8 (UTF-16, Latin-1; a UTF-8 byte order mark is
    accepted and dropped); a Parquet file without its footer. A text file whose last line has no
    line break (cut short, or still being written) is marked, and refused by
    ``refuse_incomplete``.
    """
    refuse_strays(folder, file_format)
    files = []
    for path in sorted(p for p in folder.iterdir() if is_data_file(p)):
        size = path.stat().st_size
        problem = None
        if size == 0:
            if file_format == "jsonl":
                continue
            problem = (
                "is empty (0 bytes): nothing was delivered (a CSV day without rows is its "
                "header line)"
            )
        elif file_format == "parquet":
            if not _is_complete_parquet(path, size):
                problem = "is not a complete Parquet file (no footer): cut short or still written"
        else:
            problem = _utf8_problem(path)
        if problem:
            raise LandingRefusedError(f"landing file {path} {problem}; refused, nothing read")
        header = _csv_header(path) if file_format == "csv" else ()
        complete = file_format == "parquet" or _ends_with_line_break(path)
        files.append(LandedFile(path, size, header, complete))
    return files


def refuse_incomplete(files: list[LandedFile]) -> None:
    """Refuse the first text file whose last line has no line break (checked after the columns:
    a file with the wrong columns is refused for those first)."""
    for f in files:
        if not f.complete:
            raise LandingRefusedError(
                f"landing file {f.path} does not end with a line break: its last line is cut "
                "(a truncated transfer, or a file still being written); refused, nothing read"
            )
