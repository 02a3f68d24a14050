"""The project's own exception types.

Every error raised for bad input names what was read (file, line, value) and what was
expected, so a user can fix the input without reading our code.
"""

from __future__ import annotations


class KmrecError(Exception):
    """Base class for every error kmrec_gpu raises on purpose."""


class DataError(KmrecError):
    """Input data is malformed, inconsistent or fails verification."""


class DatasetNotFound(DataError):
    """A dataset could not be located locally nor downloaded."""


class UnknownDataset(DataError, KeyError):
    """A dataset name is not in the registry."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class ChecksumMismatch(DataError):
    """A file's digest differs from the one the registry expects."""


class CorruptArchive(DataError):
    """A zip archive is truncated, corrupt or lacks a member file."""


class MalformedInput(DataError):
    """A line or value in a data file does not have the expected form."""


class BackendUnavailable(KmrecError):
    """The requested compute backend cannot be used on this machine."""


class SchemaError(KmrecError):
    """A result row or claims record does not follow its schema."""


class InvalidArgument(KmrecError, ValueError):
    """An argument is outside what a function accepts (an empty separator, a negative seed).

    Also a ``ValueError``, so callers that catch those keep working."""
