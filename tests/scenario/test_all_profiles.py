"""Every system of every shipped scenario, under every profile, builds, takes one training
step and transmits one batch, so that no profile (the GPU-only ``paper`` ones included)
can break unnoticed.

Sizes are shrunk through the params (widths, depths, map counts, the DVB-S2 frame), the
structure each profile chooses is kept (compensation module, ablation switches, staged
schedule, CSI mode, matching, optimizer). The InternViT-300M weights of the ``paper``
profiles are replaced by a tiny random InternViT snapshot written here with
``transformers`` (the real one is 300M parameters and a download), with the shape check
of :mod:`semsim.semantic.compensation` pointed at it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import yaml

from semsim.cli.main import main
from semsim.scenario.loader import load_scenario
from semsim.systems.base import TrainSpec
from semsim.systems.registry import get_system_type

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.yaml"))
IMAGE = 32
#: Size params per system type (only those the type's params have are applied).
SWIN = dict(encoder_dims=(8, 8), encoder_depths=(1, 1), encoder_heads=(2, 2),
            decoder_dims=(8, 8), decoder_depths=(1, 1), decoder_heads=(2, 2))
SHRINK = {
    "reference": dict(SWIN, num_maps=4, channel_embed_dim=4, entropy_embed_dim=4, hidden_units=8),
    "swinjscc": dict(SWIN, channels=4, hidden=4),
    "multiuser": dict(num_maps=4, filters=(4, 4, 8), policy_units=8, num_heads=2),
    "deepjscc": dict(filters=(4, 4, 4, 4)),
    "adjscc": dict(filters=(4, 4, 4, 4)),
    "separation": dict(frame="short"),
    # a few classifier steps (the classifier trains after the encoder)
    "mijscc": dict(filters=(4, 4, 4), classifier_hidden=8, classifier_steps=2),
    "classified": dict(classifier_train_images=8, batch=8, classifier_hidden=8,
                       classifier_steps=2),
    # one step per training stage (each passes images through the real HEVC + LDPC chain)
    "scsc": dict(filters=4, ppen_depth=1, admm_layers=2, proxy_steps=1, pcen_steps=1,
                 ppen_steps=1, proxy_check_batches=1),
}
VIT_SMALL = dict(hidden_dim=8, num_layers=1, num_heads=2, intermediate_dim=16)
#: Images of a non-learned system's evaluation batch (a multiple of 1..4 users that fills
#: a DVB-S2 short frame at CR 0.15).
DIGITAL_IMAGES = 48


@pytest.fixture(autouse=True)
def _eager():
    """Functions run eagerly: one step does not repay tracing the training and forward
    graphs (graph-mode behaviour is covered by each system's own tests)."""
    tf.config.run_functions_eagerly(True)
    yield
    tf.config.run_functions_eagerly(False)


@pytest.fixture(scope="module")
def tiny_internvit(tmp_path_factory):
    """A tiny random InternVL vision tower saved as a snapshot (HF layout)."""
    torch = pytest.importorskip("torch", reason="the tiny InternViT snapshot needs PyTorch")
    transformers = pytest.importorskip("transformers", reason="... and transformers")
    torch.manual_seed(0)
    config = transformers.InternVLVisionConfig(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
        image_size=28, patch_size=7, attention_bias=True)
    directory = tmp_path_factory.mktemp("internvit")
    transformers.InternVLVisionModel(config).eval().save_pretrained(directory)
    return directory, (16, 2)


def _shrunk(params, type_name: str, internvit):
    update = {k: v for k, v in SHRINK.get(type_name, {}).items() if k in type(params).model_fields}
    if type_name == "classified":  # the wrapped system is shrunk as it would be alone
        inner = get_system_type(params.system).params.model_validate(params.params)
        update["params"] = _shrunk(inner, params.system, internvit).model_dump(mode="json")
    compensation = getattr(params, "compensation", "none")
    if compensation == "vit-small":
        update["compensation_options"] = {**params.compensation_options, **VIT_SMALL}
    elif compensation == "internvit-300m" and internvit is not None:
        directory, _ = internvit
        assert "weights_dir" in params.compensation_options  # the profile names one
        update["compensation_options"] = {**params.compensation_options,
                                          "weights_dir": str(directory), "num_layers_to_keep": 1,
                                          "lora_rank": 2}
    return type(params).model_validate({**params.model_dump(), **update})


def _cases():
    """One case per distinct (system type, shrunk params, link shape, optimizer, matched or
    not) over every file and profile: profiles that differ only in data, budget, sizes or
    the CSI mode share a case (the CSI mode is the physical layer's, the same code path
    for every system: see tests/phy)."""
    seen = set()
    for path in SCENARIOS:
        header = yaml.safe_load(path.read_text())
        for profile in header.get("profiles") or {None: None}:
            resolved = load_scenario(path, profile)
            scenario = resolved.scenario
            train = scenario.train
            for entry in scenario.systems:
                params = _shrunk(resolved.params[entry.name], entry.type, None)
                link = scenario.link.to_spec()
                shape = [link.num_tx_ant, link.num_rx_ant, link.users, link.fading]
                key = json.dumps([entry.type, params.model_dump(mode="json"), shape,
                                  train.optimizer,
                                  train.weight_decay, entry.match_cr_of is not None],
                                 sort_keys=True)
                if key not in seen:
                    seen.add(key)
                    yield pytest.param(path, profile, entry.name,
                                       id=f"{path.stem}-{profile}-{entry.name}")


@pytest.mark.slow
@pytest.mark.parametrize("path, profile, name", list(_cases()))
def test_profile_builds_trains_one_step_and_transmits(path, profile, name, request, tmp_path,
                                                      monkeypatch):
    resolved = load_scenario(path, profile)
    scenario = resolved.scenario
    entry = scenario.system(name)
    params = resolved.params[name]
    internvit = None
    if getattr(params, "compensation", "none") == "internvit-300m":
        internvit = request.getfixturevalue("tiny_internvit")
        monkeypatch.setattr("semsim.semantic.compensation.INTERNVIT_300M_SHAPE", internvit[1])
    params = _shrunk(params, entry.type, internvit)
    link = scenario.link.to_spec()
    stype = get_system_type(entry.type)
    # Learned systems on 16x16 images; the digital chains on 32x32 (HEVC's smallest
    # comfortable size).
    size = IMAGE if entry.type in ("separation", "capacity_bound") else 16
    system = stype.factory(params, link, (size, size), scenario.seed)
    users = link.users
    rng = np.random.default_rng(0)
    train = scenario.train
    spec = TrainSpec(steps=1, steps_per_epoch=1, batch_size=2 * users,
                     learning_rate=train.learning_rate, optimizer=train.optimizer,
                     weight_decay=train.weight_decay,
                     snr_range_db=tuple(entry.train_snr_db or scenario.snr.train_db),
                     jit_compile=False, seed=scenario.seed)
    images = rng.uniform(size=(2 * users, size, size, 3)).astype(np.float32)
    labelled = getattr(system, "uses_labels", False)  # classifiers train on (image, label)
    labels = rng.integers(0, 10, 2 * users)
    data = tf.data.Dataset.from_tensor_slices((images, labels) if labelled else images)
    data = data.batch(2 * users, drop_remainder=True).repeat()  # endless, as the runner's
    system.verbose = 0
    system.prepare(data, spec, tmp_path, resume=False)
    model = getattr(system, "model", None)
    if system.trainable and model is not None:  # Keras systems (KerasSystem)
        weights = [w.numpy() for w in model.trainable_weights]
        assert weights and all(np.all(np.isfinite(w)) for w in weights)
        # the step ran to the end: the final weights are written (multi-stage systems such
        # as MIJSCC write one file per stage)
        assert any(tmp_path.rglob("*.weights.h5"))
    count = 2 * users if system.trainable else DIGITAL_IMAGES
    images = rng.uniform(size=(count, size, size, 3)).astype(np.float32)
    target = 0.15 if entry.match_cr_of else None
    snr = float(np.median(scenario.snr.eval_db))
    extra = {"labels": rng.integers(0, 10, count)} if labelled else {}
    result = system.transmit(images, snr, target_cr=target, **extra)
    assert result.images_hat.shape == images.shape
    assert np.all(np.isfinite(result.images_hat)) and result.cr.shape == (count,)
    assert np.all(result.cr > 0)
    if target is not None:
        assert np.all(result.cr <= target + 1e-6), (result.cr.max(), target)


def test_internvit_profiles_name_real_weights_and_mu():
    """The reference paper's profiles run the proposed system with InternViT-300M and the
    feature-consistency term; the random vit-small never appears in a paper profile."""
    for stem in ("mimo_2x2", "mimo_4x4"):
        for profile in ("paper", "paper_table2", "paper_ls"):
            params = load_scenario(SCENARIOS[0].parent / f"{stem}.yaml", profile).params
            assert params["reference"].compensation == "internvit-300m"
            assert params["reference"].mu > 0 and "weights_dir" in \
                params["reference"].compensation_options
    ablation = load_scenario(SCENARIOS[0].parent / "ablation_no_vit.yaml", "paper").params
    assert ablation["no_vit"].compensation == "none"
    assert ablation["vit_small"].compensation == "internvit-300m"
    for path in SCENARIOS:
        for profile in yaml.safe_load(path.read_text()).get("profiles") or {}:
            if profile.startswith("paper"):
                for params in load_scenario(path, profile).params.values():
                    assert getattr(params, "compensation", "none") != "vit-small", (path, profile)


def test_paper_profiles_set_the_published_link_and_baselines():
    """Perfect CSI in the paper profiles (LS only in *_ls and the base), separation matched
    to the multi-user system's rate, Deep JSCC at CPP 0.328 (0.289 for Table II)."""
    root = SCENARIOS[0].parent
    quick = load_scenario(root / "mu_mimo_4users.yaml", "quick").scenario
    paper = load_scenario(root / "mu_mimo_4users.yaml", "paper")
    ls = load_scenario(root / "mu_mimo_4users.yaml", "paper_ls").scenario
    assert quick.link.to_spec().csi.mode == "ls" and ls.link.to_spec().csi.mode == "ls"
    assert paper.scenario.link.to_spec().csi.mode == "perfect"
    assert quick.system("separation").match_cr_of is None
    assert paper.scenario.system("separation").match_cr_of == "multiuser"
    # CR = 2/3 CPP; Deep JSCC rounds to whole latent channels (c / 48).
    assert math.isclose(paper.params["deepjscc"].cr * 1.5, 0.328, rel_tol=1e-3)
    table2 = load_scenario(root / "mu_mimo_2users.yaml", "paper_table2").params
    assert math.isclose(table2["deepjscc"].cr * 1.5, 0.289, rel_tol=1e-3)
    assert table2["multiuser"].alpha > load_scenario(root / "mu_mimo_2users.yaml",
                                                     "paper").params["multiuser"].alpha
    imperfect = load_scenario(root / "imperfect_csi.yaml", "paper").scenario.link.to_spec()
    assert imperfect.csi.mode == "noisy"


def test_validate_accepts_every_shipped_scenario(capsys):
    assert main(["validate", *map(str, SCENARIOS)]) == 0
    out = capsys.readouterr().out
    assert out.count(": ok") == len(SCENARIOS)
