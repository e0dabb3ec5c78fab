"""quantization_config=rocq.RocqConfig(...) through transformers' plugin API."""
import json

import pytest
import torch

transformers = pytest.importorskip("transformers")

import rocq  # noqa: E402
from rocq.hf import RocqConfig  # noqa: E402
from rocq.nn import QuantLinear  # noqa: E402
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    m = LlamaForCausalLM(cfg).eval()
    m.save_pretrained(d)
    return d, m


IDS = torch.randint(0, 256, (1, 12), generator=torch.Generator().manual_seed(1))


def test_config_registered_and_serializable():
    from transformers.quantizers.auto import AUTO_QUANTIZATION_CONFIG_MAPPING, AUTO_QUANTIZER_MAPPING

    assert AUTO_QUANTIZATION_CONFIG_MAPPING["rocq"] is RocqConfig
    assert "rocq" in AUTO_QUANTIZER_MAPPING
    c = RocqConfig(qtype="Q4_K", overrides={"*.down_proj": "q6_k"})
    d = c.to_dict()
    assert d["quant_method"] == "rocq" and d["qtype"] == "q4_k" and d["overrides"] == {"*.down_proj": "q6_k"}
    c2 = RocqConfig.from_dict(json.loads(json.dumps(d)))
    assert c2.to_dict() == d
    with pytest.raises(ValueError):
        RocqConfig(qtype="nope")


def test_quantize_on_load_save_reload(checkpoint, tmp_path):
    d, src = checkpoint
    qm = AutoModelForCausalLM.from_pretrained(d, quantization_config=RocqConfig(qtype="q8_0",
                                                                               overrides={"*.down_proj": "q4_0"}))
    layer = qm.model.layers[0]
    assert isinstance(layer.self_attn.q_proj, QuantLinear) and layer.self_attn.q_proj.qtype_name == "q8_0"
    assert layer.mlp.down_proj.qtype_name == "q4_0"
    assert isinstance(qm.lm_head, torch.nn.Linear)  # skipped by default
    assert not any(n.endswith(".weight") for n, _ in layer.self_attn.q_proj.named_buffers())
    with torch.no_grad():
        ref, out = src(IDS).logits, qm(IDS).logits
    assert ((out - ref).norm() / ref.norm()).item() < 0.05

    qm.save_pretrained(tmp_path)
    saved = json.load(open(tmp_path / "config.json"))["quantization_config"]
    assert saved["quant_method"] == "rocq" and saved["layers"]["model.layers.1.mlp.down_proj"] == "q4_0"
    qm2 = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert isinstance(qm2.model.layers[1].mlp.down_proj, QuantLinear)
    for name, mod in qm.named_modules():
        if isinstance(mod, QuantLinear):
            assert torch.equal(qm2.get_submodule(name).qweight, mod.qweight), name
    with torch.no_grad():
        assert torch.equal(qm2(IDS).logits, out)
    g1 = qm.generate(IDS[:, :4], max_new_tokens=5, do_sample=False)
    g2 = qm2.generate(IDS[:, :4], max_new_tokens=5, do_sample=False)
    assert torch.equal(g1, g2)


def test_quantize_on_load_bf16(checkpoint):
    d, _ = checkpoint
    qm = AutoModelForCausalLM.from_pretrained(d, dtype=torch.bfloat16, quantization_config=RocqConfig(qtype="q4_0"))
    q = qm.model.layers[0].mlp.up_proj
    assert q.qweight.dtype == torch.uint8 and q.dtype == torch.bfloat16
    assert qm(IDS).logits.dtype == torch.bfloat16


def test_same_as_quantize_model(checkpoint):
    d, src = checkpoint
    qm = AutoModelForCausalLM.from_pretrained(d, quantization_config=RocqConfig(qtype="q8_0"))
    m = AutoModelForCausalLM.from_pretrained(d)
    rocq.quantize_model(m, "q8_0", progress=False)
    for name, mod in m.named_modules():
        if isinstance(mod, QuantLinear):
            assert torch.equal(qm.get_submodule(name).qweight, mod.qweight), name
