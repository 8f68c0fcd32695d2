"""Errors the library raises, each with the process exit code the CLI maps it to."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Exit codes of the `mnist-softmax` command (documented in the README)."""

    OK = 0
    INTERNAL = 1  # a bug: please report it with --traceback
    USAGE = 2  # bad command line or bad option value
    DATA = 3  # data missing, malformed or failing its checksum
    DOWNLOAD = 4  # every mirror failed
    MODEL = 5  # a model file that cannot be loaded
    TRAINING = 6  # training diverged
    OUTPUT = 7  # an output path that cannot be written
    PARTIAL = 8  # some inputs of a batch command failed, the others succeeded


class MnistSoftmaxError(Exception):
    """Base class: a problem the user can fix, reported as one line.

    `cli`, when given, is the same message told to a command-line user (options instead of Python arguments);
    str(error) is what a Python caller reads.
    """

    exit_code = ExitCode.INTERNAL

    def __init__(self, *args, cli: str | None = None):
        super().__init__(*args)
        self.cli = cli


class UsageError(MnistSoftmaxError, ValueError):
    """An argument or option value that is not allowed."""

    exit_code = ExitCode.USAGE


class DataError(MnistSoftmaxError):
    """Data that is missing, malformed or not what its checksum promises."""

    exit_code = ExitCode.DATA


class DataFormatError(DataError, ValueError):
    """A file that is not valid IDX data, or data that contradicts itself."""


class ChecksumError(DataError):
    """A file whose decompressed payload does not hash to the expected SHA-256."""


class DataNotFoundError(DataError, FileNotFoundError):
    """The dataset files are nowhere to be found and could not be downloaded."""


class DownloadError(MnistSoftmaxError):
    """Every mirror failed; the message lists why, mirror by mirror."""

    exit_code = ExitCode.DOWNLOAD


class ModelFileError(MnistSoftmaxError, ValueError):
    """A model file that is missing, malformed or unsafe to load."""

    exit_code = ExitCode.MODEL


class DivergenceError(MnistSoftmaxError, ArithmeticError):
    """Training produced a non-finite loss."""

    exit_code = ExitCode.TRAINING


class OutputError(MnistSoftmaxError, OSError):
    """An output file or directory that cannot be written."""

    exit_code = ExitCode.OUTPUT
