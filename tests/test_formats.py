"""rocq.formats() / rocq.qtype(): the Python table read from kernels/formats.h."""
import gguf
import pytest

import rocq

GGUF_NAMES = ["f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k", "q4_k", "q5_k",
              "q6_k", "iq4_nl", "iq4_xs", "mxfp4"]


@pytest.mark.parametrize("name", GGUF_NAMES)
def test_gguf_formats_match_ggml(name):
    f = rocq.format_info(name)
    t = gguf.GGMLQuantizationType[name.upper()]
    assert f.id == int(t)
    assert (f.block_elems, f.block_bytes) == gguf.GGML_QUANT_SIZES[t]
    assert not f.scale_plane
    assert rocq.qtype(name) == rocq.qtype(name.upper()) == rocq.qtype(int(t)) == rocq.qtype(t) == int(t)


def test_known_ids():
    assert rocq.qtype("q4_k") == 12 and rocq.qtype("mxfp4") == 39 and rocq.qtype("iq4_nl") == 20
    assert rocq.format_info("q4_k").bits_per_weight == 4.5
    assert rocq.format_info("q8_0").bits_per_weight == 8.5
    names = [f.name for f in rocq.formats()]
    assert len(names) == len(set(names))
    assert len({f.id for f in rocq.formats()}) == len(names)


def test_unknown_qtype_messages():
    with pytest.raises(ValueError, match="unknown format name 'q7_k'"):
        rocq.qtype("q7_k")
    with pytest.raises(ValueError, match="unknown qtype id 21"):
        rocq.qtype(21)
    with pytest.raises(TypeError, match="qtype must be a format name or id"):
        rocq.qtype(1.5)
