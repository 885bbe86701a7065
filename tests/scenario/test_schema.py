"""Scenario schema: mapping onto LinkSpec/TrainSpec, profiles, cross-field rules."""

from __future__ import annotations

import pytest

from semsim.scenario.loader import ScenarioError, load_scenario, validate_file
from semsim.scenario.schema import TrainConfig, evaluation_order
from semsim.systems.base import CSISpec, LinkSpec

MU = """\
name: mu
description: multi-user test
link: {nr: 4, users: 4, csi: {mode: noisy, error_var: noise}, rx_correlation: 0.5}
snr: {train_db: [0, 20], eval_db: [5, 15]}
systems:
  - {name: base, type: toy, params: {cr: 0.5}}
  - {name: matcher, type: toy, match_cr_of: late}
  - {name: late, type: toy, match_cr_of: base, train_snr_db: [25, 25]}
train: {epochs: 3, steps_per_epoch: 7, batch_size: 16, optimizer: adamw}
profile: quick
profiles:
  quick:
    train: {epochs: 1}
    data: {test_images: 12}
    systems: {base: {params: {shrink: 0.5}}}
  paper:
    data: {image_size: 64}
"""


def write(tmp_path, text, name="s.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_multi_user_link_maps_onto_linkspec(tmp_path):
    resolved = load_scenario(write(tmp_path, MU), profile="paper")
    link = resolved.scenario.link.to_spec()
    assert link == LinkSpec(num_rx_ant=4, users=4, antennas_per_user=1, fading="block",
                            rx_correlation=0.5, tx_correlation=0.0,
                            csi=CSISpec(mode="noisy", pilots=None, error_var=None),
                            detector="lmmse")
    assert link.num_tx_ant == 4
    assert resolved.scenario.data.image_size == 64


def test_single_user_ls_pilots_default_to_antennas(tmp_path):
    text = MU.replace("{nr: 4, users: 4, csi: {mode: noisy, error_var: noise}, "
                      "rx_correlation: 0.5}", "{nr: 4, nt: 3, csi: ls}")
    link = load_scenario(write(tmp_path, text)).scenario.link.to_spec()
    assert (link.num_rx_ant, link.num_tx_ant, link.users) == (4, 3, 1)
    assert link.csi == CSISpec(mode="ls", pilots=3, error_var=None)


def test_train_spec_from_epochs_and_system_snr_override(tmp_path):
    resolved = load_scenario(write(tmp_path, MU), profile="paper")
    scenario = resolved.scenario
    spec = scenario.train.to_spec(scenario.system("late").train_snr_db, seed=5,
                                  train_batches=99)
    assert (spec.steps, spec.steps_per_epoch, spec.epochs) == (21, 7, 3)
    assert (spec.batch_size, spec.optimizer, spec.seed) == (16, "adamw", 5)
    assert spec.snr_range_db == (25.0, 25.0)


def test_default_profile_and_overrides(tmp_path):
    path = write(tmp_path, MU)
    quick = load_scenario(path)  # the file's `profile: quick`
    assert quick.profile == "quick"
    assert quick.scenario.train.epochs == 1
    assert quick.scenario.data.test_images == 12
    # params merged key by key: shrink from the profile, cr from the base entry
    assert quick.scenario.system("base").params == {"cr": 0.5, "shrink": 0.5,
                                                    "interrupt_at_step": None}
    assert quick.params["base"].shrink == 0.5
    paper = load_scenario(path, profile="paper")
    assert paper.scenario.train.epochs == 3 and paper.scenario.data.test_images is None


def test_undefined_profile_is_an_error(tmp_path):
    path = write(tmp_path, MU.split("profile: quick")[0])
    with pytest.raises(ScenarioError) as err:
        load_scenario(path, profile="paper")
    assert err.value.lines() == [
        f"{path}: profile: profile 'paper' is not defined in this file (profiles: none; "
        "names: letters, digits, '_' and '-')"]


def test_profiles_may_have_any_identifier_name(tmp_path):
    text = MU.replace("  paper:", "  my-gpu_run:")
    resolved = load_scenario(write(tmp_path, text), profile="my-gpu_run")
    assert resolved.profile == "my-gpu_run"
    bad = MU.replace("  paper:", "  'bad name':")
    problems, _ = validate_file(write(tmp_path, bad))
    assert any(p.path.startswith("profiles") and "pattern" in p.message for p in problems)


def test_evaluation_order_puts_matched_systems_first(tmp_path):
    scenario = load_scenario(write(tmp_path, MU)).scenario
    assert [s.name for s in evaluation_order(scenario.systems)] == ["base", "late", "matcher"]


def test_match_cr_of_cycle_is_reported(tmp_path):
    text = MU.replace("{name: base, type: toy, params: {cr: 0.5}}",
                      "{name: base, type: toy, match_cr_of: matcher}")
    problems, _ = validate_file(write(tmp_path, text))
    assert [str(p) for p in problems] == [
        "systems: match_cr_of forms a cycle: base -> matcher -> late -> base"]


def test_profile_only_problem_is_tagged(tmp_path):
    text = MU.replace("data: {image_size: 64}", "data: {image_size: 2}")
    problems, profiles = validate_file(write(tmp_path, text))
    assert profiles == ["quick", "paper"]
    assert [str(p) for p in problems] == [
        "data.image_size: Input should be greater than or equal to 8 (got 2) [profile paper]"]


def test_resolved_yaml_loads_back_identically(tmp_path):
    resolved = load_scenario(write(tmp_path, MU))
    again = load_scenario(write(tmp_path, resolved.to_yaml(), "resolved.yaml"))
    assert again.profile is None
    assert again.to_dict() == resolved.to_dict()


def test_multi_user_batches_must_hold_whole_user_groups(tmp_path):
    text = MU.replace("data: {test_images: 12}", "data: {test_images: 10}")
    problems, _ = validate_file(write(tmp_path, text))
    assert [str(p) for p in problems] == [
        "data.test_images: 10 is not a multiple of link.users (4) [profile quick]"]
    text = MU.replace("train: {epochs: 3", "eval: {batch_size: 6}\ntrain: {epochs: 3")
    problems, _ = validate_file(write(tmp_path, text))
    assert [str(p) for p in problems] == [
        "eval.batch_size: 6 is not a multiple of link.users (4)"]


def test_steps_budget_caps_the_epoch_length(tmp_path):
    quick = load_scenario(write(tmp_path, MU.replace("train: {epochs: 1}", "train: {steps: 5}")))
    assert quick.scenario.train.epochs is None  # a profile's steps replace the base epochs
    spec = quick.scenario.train.to_spec((0.0, 20.0), seed=0, train_batches=99)
    assert (spec.steps, spec.steps_per_epoch, spec.epochs) == (5, 5, 1)


@pytest.mark.parametrize("steps, batches, expected", [
    (600, 204, (200, 3, 600)),     # 3 epochs of 204 would train 612 steps: 3 x 200
    (7000, 500, (500, 14, 7000)),  # already even: unchanged
    (601, 204, (201, 3, 603)),     # not divisible: at most epochs - 1 = 2 steps more
    (10, 3, (3, 4, 12)),
])
def test_steps_budget_is_split_into_even_epochs(steps, batches, expected):
    spec = TrainConfig(steps=steps).to_spec((0.0, 20.0), 0, batches)
    trained = spec.epochs * spec.steps_per_epoch
    assert (spec.steps_per_epoch, spec.epochs, trained) == expected
    assert steps <= trained < steps + spec.epochs and spec.steps_per_epoch <= batches


def test_bd_anchor_and_curves_must_name_systems(tmp_path):
    def problems(eval_text):
        text = MU.replace("train: {epochs: 3", f"eval: {eval_text}\ntrain: {{epochs: 3")
        return [str(p) for p in validate_file(write(tmp_path, text))[0]]

    assert problems("{bd_anchor: base}") == []
    assert problems("{bd_anchor: sweep, bd_curves: {sweep: [base, late]}}") == []
    assert problems("{bd_anchor: chain}") == [
        "eval.bd_anchor: 'chain' is not a system of this scenario nor a curve of "
        "eval.bd_curves; systems: base, matcher, late"]
    assert problems("{bd_anchor: base, bd_curves: {s: [base, nope]}}") == [
        "eval.bd_curves['s']: 'nope' is not a system of this scenario; "
        "systems: base, matcher, late"]
    # a system may be in several curves (a rate-1/2 curve and the best-of-all-rates one)
    assert problems("{bd_anchor: s, bd_curves: {s: [base], t: [base, late]}}") == []
    assert problems("{bd_anchor: s, bd_curves: {s: [base, late, base]}}") == [
        "eval.bd_curves['s']: 'base' is listed twice"]
    assert problems("{bd_anchor: base, bd_curves: {s: [base, late]}}") == [
        "eval.bd_anchor: 'base' belongs to curve 's'; name that curve"]
    assert problems("{bd_curves: {s: [base]}}") == [
        "eval.bd_curves: needs eval.bd_anchor (the curve compared against)"]
    # best configuration per CBR: only curves of bd_curves
    assert problems("{bd_anchor: s, bd_curves: {s: [base], t: [base, late]}, "
                    "bd_envelope: [t, s]}") == []
    assert problems("{bd_anchor: s, bd_curves: {s: [base, late]}, bd_envelope: [base]}") == [
        "eval.bd_envelope: 'base' is not a curve of eval.bd_curves; curves: s"]
    assert problems("{bd_anchor: base, bd_envelope: [base]}") == [
        "eval.bd_envelope: 'base' is not a curve of eval.bd_curves; curves: none"]
    assert problems("{bd_anchor: s, bd_curves: {s: [base, late]}, bd_envelope: [s, s]}") == [
        "eval.bd_envelope: a curve is listed twice"]


def test_precoding_svd_is_refused_where_it_cannot_work(tmp_path):
    single = MU.replace("{nr: 4, users: 4, csi: {mode: noisy, error_var: noise}, "
                        "rx_correlation: 0.5}", "{nr: 2, nt: 2, precoding: svd}")
    assert validate_file(write(tmp_path, single))[0] == []
    resolved = load_scenario(write(tmp_path, single))
    assert resolved.scenario.link.to_spec().precoding == "svd"
    problems, _ = validate_file(write(tmp_path, MU.replace("rx_correlation: 0.5}",
                                                           "rx_correlation: 0.5, precoding: svd}")))
    assert [str(p) for p in problems] == [
        "link.precoding: 'svd' needs a single-user link (users is 4)"]


def test_resume_accepts_a_run_made_before_new_fields_at_their_defaults(tmp_path):
    """run_state.json of a run made before eval.bd_* and link.precoding existed lacks
    them; --resume compares the re-validated scenarios, so they match, while a changed
    value still differs."""
    from semsim.scenario.runner import _without_resumable

    now = load_scenario(write(tmp_path, MU)).to_dict()
    before = {**now, "eval": {k: v for k, v in now["eval"].items() if not k.startswith("bd_")},
              "link": {k: v for k, v in now["link"].items() if k != "precoding"}}
    assert before != now and _without_resumable(before) == _without_resumable(now)
    changed = {**before, "eval": {**before["eval"], "samples": 2}}
    assert _without_resumable(changed) != _without_resumable(now)


def test_a_system_trains_with_its_own_train_keys(tmp_path):
    text = MU.replace("  - {name: base, type: toy, params: {cr: 0.5}}",
                      "  - {name: base, type: toy, params: {cr: 0.5}, "
                      "train: {steps: 40, learning_rate: 0.01}}")
    scenario = load_scenario(write(tmp_path, text), profile="paper").scenario
    base = scenario.train_for("base")
    # steps replace the scenario's epochs; keys not named come from the scenario
    assert (base.steps, base.epochs, base.learning_rate) == (40, None, 0.01)
    assert (base.batch_size, base.optimizer, base.steps_per_epoch) == (16, "adamw", 7)
    spec = base.to_spec((0.0, 20.0), seed=0, train_batches=99)
    assert (spec.steps, spec.steps_per_epoch, spec.epochs) == (40, 7, 6)
    # the other systems and the scenario's own section are untouched
    assert scenario.train_for("late") == scenario.train
    assert (scenario.train.epochs, scenario.train.learning_rate) == (3, 1e-3)


def test_a_profile_changes_one_system_train_keys(tmp_path):
    text = MU.replace("    systems: {base: {params: {shrink: 0.5}}}",
                      "    systems: {base: {params: {shrink: 0.5}, train: {epochs: 9}}}")
    text = text.replace("  - {name: base, type: toy, params: {cr: 0.5}}",
                        "  - {name: base, type: toy, params: {cr: 0.5}, "
                        "train: {steps: 40, batch_size: 8}}")
    quick = load_scenario(write(tmp_path, text)).scenario
    base = quick.train_for("base")
    assert (base.epochs, base.steps, base.batch_size) == (9, None, 8)
    assert quick.train.epochs == 1  # the profile's scenario-wide train
    paper = load_scenario(write(tmp_path, text), profile="paper").scenario
    assert (paper.train_for("base").steps, paper.train_for("base").batch_size) == (40, 8)


def test_bad_system_train_keys_are_refused_with_their_place(tmp_path):
    text = MU.replace("  - {name: matcher, type: toy, match_cr_of: late}",
                      "  - {name: matcher, type: toy, match_cr_of: late, train: {stepz: 4}}")
    problems, _ = validate_file(write(tmp_path, text))
    assert len(problems) == 1
    assert "systems[1].train: stepz: Extra inputs are not permitted" in str(problems[0])
    text = MU.replace("  - {name: matcher, type: toy, match_cr_of: late}",
                      "  - {name: matcher, type: toy, match_cr_of: late, "
                      "train: {batch_size: 0}}")
    problems, _ = validate_file(write(tmp_path, text))
    assert "systems[1].train: batch_size: Input should be greater than 0" in str(problems[0])
