"""precision: auto picks bfloat16 only where the CPU computes it natively; a network saved in
bfloat16 runs in float32 (the same maps to bfloat16 rounding) on a CPU without it."""
import numpy as np
import pytest

from keras_openpose.model import precision as P

INTEL_AMX = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
AMD_MILAN = "processor\t: 0\nflags\t\t: fpu sse2 fma avx avx2 sha_ni vaes\n"
ARM_V86 = "processor\t: 0\nFeatures\t: fp asimd bf16 i8mm sve2\n"
ARM_V82 = "processor\t: 0\nFeatures\t: fp asimd asimdhp\n"


@pytest.mark.parametrize("text,native", [(INTEL_AMX, True), (AMD_MILAN, False), (ARM_V86, True), (ARM_V82, False)])
def test_native_bfloat16_is_read_from_the_cpu_flags(tmp_path, text, native):
    f = tmp_path / "cpuinfo"
    f.write_text(text)
    assert P.cpu_has_native_bfloat16(f) is native
    assert P.cpu_flags(tmp_path / "absent") is None


@pytest.mark.parametrize("native,expected", [(True, "mixed_bfloat16"), (False, "float32")])
def test_auto_resolves_per_cpu_and_explicit_policies_stay(monkeypatch, native, expected):
    monkeypatch.setattr(P, "cpu_has_native_bfloat16", lambda: native)
    monkeypatch.setattr(P, "_gpu_compute_capability", lambda: None)
    assert P.resolve_precision("auto") == expected
    assert P.resolve_precision("mixed_bfloat16") == "mixed_bfloat16"      # asked for: given, even if slow
    assert P.runnable_precision("mixed_bfloat16") == ("mixed_bfloat16" if native else "float32")
    assert P.runnable_precision("mixed_float16") == "mixed_float16"
    with pytest.raises(ValueError, match="precision 'half'"):
        P.resolve_precision("half")


def test_auto_on_gpus_by_compute_capability(monkeypatch):
    monkeypatch.setattr(P, "cpu_has_native_bfloat16", lambda: False)
    monkeypatch.setattr(P, "_gpu_compute_capability", lambda: (9, 0))
    assert P.resolve_precision("auto") == "mixed_bfloat16" and P.runnable_precision("mixed_bfloat16") == "mixed_bfloat16"
    monkeypatch.setattr(P, "_gpu_compute_capability", lambda: (7, 0))
    assert P.resolve_precision("auto") == "mixed_float16"


def test_a_bfloat16_network_runs_in_float32_where_bfloat16_is_emulated(monkeypatch):
    """The rebuilt twin has the model's weights and config (but the policy) and gives its maps to
    bfloat16 rounding; where bfloat16 is native the model itself is kept."""
    import keras
    from keras_openpose.model.networks import build_model, for_this_machine
    from keras_openpose.inference.runtimes import KerasRuntime
    keras.utils.set_random_seed(0)
    model = build_model("tiny", precision="mixed_bfloat16")
    monkeypatch.setattr(P, "_gpu_compute_capability", lambda: None)
    monkeypatch.setattr(P, "cpu_has_native_bfloat16", lambda: True)
    assert for_this_machine(model) is model
    monkeypatch.setattr(P, "cpu_has_native_bfloat16", lambda: False)
    twin = KerasRuntime(model).model
    assert twin is not model and twin.precision == "float32"
    assert {k: v for k, v in twin.get_config().items() if k != "precision"} == \
        {k: v for k, v in model.get_config().items() if k != "precision"}
    assert all(np.array_equal(a, b) for a, b in zip(twin.get_weights(), model.get_weights()))
    x = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)
    a, b = model(x)[-1].numpy(), twin(x)[-1].numpy()
    # bfloat16 keeps 8 mantissa bits through every layer of both stages: measured 7 % of the largest
    # heatmap value on this random network; other weights or another network would differ by ~100 %
    assert a.shape == b.shape and 0 < np.abs(a - b).max() <= 0.15 * np.abs(b).max()
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99
