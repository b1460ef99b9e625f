"""heifkit's exception hierarchy (DESIGN §5, ``heifkit.errors``) and the errors of concrete bad inputs.

Every class derives from ``HeifError`` and from the built-in class pillow_heif raises in the same case,
so ``except ValueError`` / ``EOFError`` / ``SyntaxError`` / ``RuntimeError`` written for pillow_heif
still works. Errors carry libheif's ``code``, ``subcode`` and message, and survive pickling (they cross
process boundaries in batch conversion).
"""

from __future__ import annotations

import copy
import io
import pickle
import random
from pathlib import Path

import pillow_heif
import pytest
from PIL import Image

import heifkit
from conftest import CORPUS
from heifkit import errors

# class -> built-ins it must also be (heifkit.errors' table; DESIGN §5 names the first of each)
HIERARCHY: dict[type[heifkit.HeifError], tuple[type[BaseException], ...]] = {
    errors.InvalidInputError: (ValueError,),
    errors.TruncatedError: (EOFError, ValueError),
    errors.UnsupportedError: (SyntaxError, NotImplementedError),
    errors.SecurityLimitError: (ValueError, RuntimeError),
    errors.DecoderError: (ValueError,),
    errors.EncoderError: (RuntimeError,),
    errors.InternalError: (RuntimeError,),
}
CLASSES = list(HIERARCHY)
IDS = [cls.__name__ for cls in CLASSES]

# libheif (heif_error_code, heif_suberror_code) -> class (heif_error.h values)
MAPPING = [
    ((2, 0), errors.InvalidInputError),  # Invalid_input
    ((2, 102), errors.InvalidInputError),  # Invalid_input / No_ftyp_box
    ((2, 100), errors.TruncatedError),  # Invalid_input / End_of_data
    ((7, 100), errors.TruncatedError),  # Decoder_plugin_error / End_of_data (pillow_heif: EOFError)
    ((5, 2000), errors.InvalidInputError),  # Usage_error / Nonexisting_item_referenced
    ((3, 0), errors.UnsupportedError),  # Unsupported_filetype
    ((4, 3001), errors.UnsupportedError),  # Unsupported_feature / Unsupported_image_type
    ((10, 0), errors.UnsupportedError),  # Color_profile_does_not_exist
    ((11, 6003), errors.UnsupportedError),  # Plugin_loading_error (no decoder for the codec)
    ((6, 1000), errors.SecurityLimitError),  # Memory_allocation_error / Security_limit_exceeded
    ((2, 1000), errors.SecurityLimitError),
    ((7, 0), errors.DecoderError),  # Decoder_plugin_error
    ((8, 0), errors.EncoderError),  # Encoder_plugin_error
    ((9, 0), errors.EncoderError),  # Encoding_error
    ((6, 0), errors.InternalError),  # Memory_allocation_error
    ((12, 0), errors.InternalError),  # Canceled
    ((1, 0), errors.InternalError),  # Input_does_not_exist
]


def jpeg_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(out, "JPEG")
    return out.getvalue()


FTYP = b"\x00\x00\x00\x18ftypheic"
BAD_INPUTS = {
    "empty": (b"", "File size too small"),
    "jpeg": (jpeg_bytes(), "No 'ftyp' box"),
    "ftyp+garbage": (FTYP + random.Random(5).randbytes(512), "Invalid input"),
    "ftyp+zeros": (FTYP + bytes(100), "No meta box found"),
}


# --- the hierarchy ------------------------------------------------------------------------------------


def test_base_class() -> None:
    assert issubclass(heifkit.HeifError, Exception)
    for builtin in (ValueError, EOFError, SyntaxError, RuntimeError):
        assert not issubclass(heifkit.HeifError, builtin)
    assert heifkit.HeifError is errors.HeifError


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_class_is_heif_error_and_builtins(cls: type[heifkit.HeifError]) -> None:
    assert issubclass(cls, heifkit.HeifError)
    for builtin in HIERARCHY[cls]:
        assert issubclass(cls, builtin), f"{cls.__name__} is not a {builtin.__name__}"
    assert getattr(heifkit, cls.__name__) is cls, "not exported from heifkit"
    with pytest.raises(HIERARCHY[cls][0]):  # an `except <builtin>` written for pillow_heif catches it
        raise cls("boom", 2, 0)


def test_distinct_classes() -> None:
    assert not issubclass(errors.InvalidInputError, EOFError)
    assert not issubclass(errors.InvalidInputError, RuntimeError)
    assert not issubclass(errors.EncoderError, ValueError)
    assert not issubclass(errors.InternalError, ValueError)
    assert len(set(CLASSES)) == len(CLASSES)


@pytest.mark.parametrize("cls", [heifkit.HeifError, *CLASSES], ids=["HeifError", *IDS])
def test_attributes(cls: type[heifkit.HeifError]) -> None:
    exc = cls("Invalid input: something broke", 2, 100)
    assert (exc.code, exc.subcode, exc.message) == (2, 100, "Invalid input: something broke")
    if cls is heifkit.SecurityLimitError:  # str() adds which limit it is and how to raise it
        assert str(exc) == f"Invalid input: something broke {exc.hint}"  # type: ignore[attr-defined]
    else:
        assert str(exc) == "Invalid input: something broke"
    plain = cls("only a message")
    assert (plain.code, plain.subcode, plain.message) == (0, 0, "only a message")


@pytest.mark.parametrize("cls", [heifkit.HeifError, *CLASSES], ids=["HeifError", *IDS])
def test_pickle_round_trip(cls: type[heifkit.HeifError]) -> None:
    exc = cls("Unsupported feature: x", 4, 3001)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(exc, protocol))
        assert type(back) is cls
        assert (back.code, back.subcode, back.message, str(back)) == (4, 3001, "Unsupported feature: x", str(exc))
    clone = copy.deepcopy(exc)
    assert type(clone) is cls and (clone.code, clone.subcode, clone.message) == (4, 3001, exc.message)


def test_pickle_real_error() -> None:
    with pytest.raises(heifkit.HeifError) as info:
        heifkit.open_heif(CORPUS / "bad" / "pheif_corrupted.hif")
    back = pickle.loads(pickle.dumps(info.value))
    assert type(back) is type(info.value)
    assert (back.code, back.subcode, back.message) == (info.value.code, info.value.subcode, info.value.message)
    assert isinstance(back, EOFError) and isinstance(back, ValueError)


@pytest.mark.parametrize(("codes", "cls"), MAPPING, ids=[f"{c}-{s}" for (c, s), _ in MAPPING])
def test_libheif_code_mapping(codes: tuple[int, int], cls: type[heifkit.HeifError]) -> None:
    # heifkit._native.libheif.error_from is the single place libheif errors become exceptions
    from heifkit._native.libheif import error_from

    exc = error_from(codes[0], codes[1], "message from libheif")
    assert type(exc) is cls
    assert (exc.code, exc.subcode, exc.message) == (*codes, "message from libheif")


# --- concrete inputs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(BAD_INPUTS))
@pytest.mark.parametrize("wrap", ["bytes", "stream"])
def test_bad_bytes(case: str, wrap: str) -> None:
    data, fragment = BAD_INPUTS[case]
    source = data if wrap == "bytes" else io.BytesIO(data)
    with pytest.raises(heifkit.HeifError) as info:
        heifkit.open_heif(source)
    exc = info.value
    assert isinstance(exc, errors.InvalidInputError) and isinstance(exc, ValueError), repr(exc)
    assert exc.code == 2, exc.code  # heif_error_Invalid_input
    assert fragment in str(exc)
    with pytest.raises(ValueError) as theirs:
        pillow_heif.open_heif(data)
    assert str(exc) == str(theirs.value), "libheif's message, unchanged, as pillow_heif reports it"


def test_missing_path() -> None:
    missing = CORPUS / "no-such-file.heic"
    with pytest.raises(FileNotFoundError):
        heifkit.open_heif(missing)
    with pytest.raises(FileNotFoundError):
        heifkit.open_heif(str(missing))
    with pytest.raises(FileNotFoundError):
        heifkit.read_heif(missing)


def test_directory_path() -> None:
    with pytest.raises(IsADirectoryError):
        heifkit.open_heif(CORPUS)


@pytest.mark.parametrize("arg", [12345, 3.5, object(), [1, 2, 3]], ids=["int", "float", "object", "list"])
def test_wrong_argument_type(arg: object) -> None:
    # pillow_heif turns an int into that many zero bytes (ValueError "No 'ftyp' box"); heifkit says TypeError
    with pytest.raises(TypeError):
        heifkit.open_heif(arg)  # type: ignore[arg-type]


def test_unknown_keyword() -> None:
    with pytest.raises(TypeError):
        heifkit.open_heif(CORPUS / "pillow_hopper.heif", no_such_option=True)


def test_truncated_file() -> None:
    heif = heifkit.open_heif(CORPUS / "bad" / "pheif_truncated.heic")
    assert len(heif) == 2
    first = heif[0]
    assert len(first.data) == first.stride * first.size[1]
    for _ in range(2):  # a failed decode is not cached as success, and fails the same way again
        with pytest.raises(heifkit.TruncatedError) as info:
            heif[1].data  # noqa: B018
        exc = info.value
        assert isinstance(exc, ValueError) and isinstance(exc, EOFError)
        assert (exc.code, exc.subcode) == (2, 100)
        assert "Extent in iloc box references data outside" in str(exc)
    assert bytes(heif[0].data) == bytes(first.data)
    with pytest.raises(ValueError):
        heifkit.read_heif(CORPUS / "bad" / "pheif_truncated.heic")


def test_corrupted_files() -> None:
    with pytest.raises(ValueError) as info:
        heifkit.open_heif(CORPUS / "bad" / "pheif_corrupted.heic")
    assert isinstance(info.value, heifkit.InvalidInputError)
    assert "Invalid input" in str(info.value)
    with pytest.raises(ValueError) as info:
        heifkit.open_heif(CORPUS / "bad" / "pheif_corrupted.hif")
    assert isinstance(info.value, heifkit.TruncatedError)
    assert "Invalid input" in str(info.value)


def test_invalid_aux_id() -> None:
    heif = heifkit.open_heif(CORPUS / "pheif_zPug_3.heic")
    with pytest.raises(ValueError) as info:
        heif.get_aux_image(9999)
    assert isinstance(info.value, heifkit.HeifError)
    assert "Non-existing item ID referenced" in str(info.value)


def test_a_bit_depth_beyond_16_is_unsupported() -> None:
    """Found by the fuzzer: an hvcC claiming 122 bits per sample raised a bare ValueError at open."""
    data = (Path(__file__).parent / "fuzz_regressions" / "read-bit-depth-122.heic").read_bytes()
    with pytest.raises(heifkit.UnsupportedError, match="122 bits per sample"):
        heifkit.open_heif(data)
