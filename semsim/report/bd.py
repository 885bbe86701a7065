"""Bjontegaard deltas of quality-vs-CBR curves (the ``bjontegaard`` package).

A curve is a system's quality (PSNR in dB, or MS-SSIM in dB as ``-10 log10(1 - ms_ssim)``)
at several channel bandwidth ratios (CBR: complex channel symbols per source real value,
i.e. ``k / n``; any rate measure works as long as both curves use the same one).

* :func:`bd_rate`: the average relative CBR difference (percent) of ``test`` against
  ``anchor`` at equal quality, over the quality range the two curves share. Negative:
  ``test`` needs that percentage less bandwidth ("saves" ``-bd_rate`` percent).
* :func:`bd_quality`: the average quality difference (dB) at equal CBR (BD-PSNR when
  the quality is PSNR). Positive: ``test`` is better.

Both interpolate in log-rate with piecewise cubic Hermite (``pchip``) polynomials, the
method the package recommends over the original cubic fit (monotone, no overshoot).

:func:`bd_section` is what a run writes into ``results.json`` (``bd``) and ``report.md``
when its scenario names an anchor (``eval: {bd_anchor: NAME, bd_curves: {...}}``): one
curve per entry of ``bd_curves`` (its systems' points) or per system left out of them (a
single point), compared per SNR against the anchor's curve. A system evaluates one CR per
SNR point, so a rate sweep is a group of systems at different CRs at the same SNR; points
at different SNRs are never joined (their quality differs for another reason than rate).
A delta is ``null`` with its reason when either curve has fewer than
:data:`MIN_RATE_POINTS` distinct rates, when PSNR does not increase strictly with CBR, or
when the curves do not overlap (in PSNR for BD-rate, in CBR for BD-PSNR).

A curve named in ``eval.bd_envelope`` is a scheme that picks its best configuration per
CBR budget (the standard chain choosing its (Q, code rate)): at each SNR its points are
reduced to their upper envelope (:func:`envelope`) before the deltas, and the section
records which systems were kept (``envelope``).

From the command line, the same section recomputed from a run's ``results.json`` (its
resolved ``scenario`` names the curves; ``--anchor`` and ``--method`` may change the
anchor curve and the interpolation), written to ``bd.json`` beside it and printed::

    python -m semsim.report.bd runs/scsc_2x2-quick/results.json [--anchor chain_best]
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path

import bjontegaard
import numpy as np

METHODS = ("pchip", "akima", "cubic")
#: Distinct rate points a curve needs for a BD delta in a run's results (the four points
#: of the original Bjontegaard fit; fewer leave the interpolation mostly unconstrained).
MIN_RATE_POINTS = 4
#: What the rate axis of :func:`bd_section` is.
RATE_AXIS = "CBR = cr / 2 (complex channel symbols per real source value), per SNR point"


def _curve(rate, quality, name: str) -> tuple[np.ndarray, np.ndarray]:
    rate = np.asarray(rate, np.float64)
    quality = np.asarray(quality, np.float64)
    if rate.ndim != 1 or rate.shape != quality.shape:
        raise ValueError(f"{name}: rate and quality must be 1-D of one length, "
                         f"got {rate.shape} and {quality.shape}")
    if rate.size < 2:
        raise ValueError(f"{name}: a curve needs at least 2 points, got {rate.size}")
    if not (np.all(np.isfinite(rate)) and np.all(rate > 0) and np.all(np.isfinite(quality))):
        raise ValueError(f"{name}: rates must be finite and > 0, qualities finite")
    order = np.argsort(rate)
    if np.any(np.diff(quality[order]) <= 0):
        raise ValueError(f"{name}: quality must increase strictly with rate "
                         f"(got rate {rate[order].tolist()}, quality {quality[order].tolist()})")
    return rate[order], quality[order]


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")


def _defined(value, axis: str) -> float:
    """The library returns NaN (with a warning) when the curves share no interval."""
    if not np.isfinite(value):
        raise ValueError(f"the curves do not overlap in {axis}; the BD delta is undefined")
    return float(value)


def bd_rate(rate_anchor, quality_anchor, rate_test, quality_test, method: str = "pchip") -> float:
    """BD-rate of ``test`` against ``anchor`` in percent (negative = ``test`` saves
    bandwidth). Rates: CBR (linear, > 0); qualities in dB, increasing with rate."""
    _check_method(method)
    ra, qa = _curve(rate_anchor, quality_anchor, "anchor")
    rt, qt = _curve(rate_test, quality_test, "test")
    return _defined(bjontegaard.bd_rate(ra, qa, rt, qt, method=method,
                                        require_matching_points=False), "quality")


def bd_quality(rate_anchor, quality_anchor, rate_test, quality_test,
               method: str = "pchip") -> float:
    """BD-PSNR (or BD of any dB quality) of ``test`` against ``anchor``, in dB
    (positive = ``test`` better at equal CBR)."""
    _check_method(method)
    ra, qa = _curve(rate_anchor, quality_anchor, "anchor")
    rt, qt = _curve(rate_test, quality_test, "test")
    return _defined(bjontegaard.bd_psnr(ra, qa, rt, qt, method=method,
                                        require_matching_points=False), "rate")


def ms_ssim_db(ms_ssim) -> np.ndarray:
    """MS-SSIM in dB, ``-10 log10(1 - ms_ssim)`` (the usual scale for BD on MS-SSIM)."""
    ms_ssim = np.asarray(ms_ssim, np.float64)
    return -10.0 * np.log10(np.maximum(1.0 - ms_ssim, 1e-12))


def bd_table(curves: dict[str, tuple], anchor: str, method: str = "pchip") -> dict[str, dict]:
    """BD-rate (percent) and BD-quality (dB) of every curve against ``curves[anchor]``.

    ``curves``: name -> ``(rates, qualities)``. Returns name -> ``{"bd_rate_percent",
    "bd_quality_db"}`` for every name but the anchor.
    """
    if anchor not in curves:
        raise ValueError(f"anchor {anchor!r} is not among the curves: {', '.join(curves)}")
    ra, qa = curves[anchor]
    return {
        name: {"bd_rate_percent": bd_rate(ra, qa, rt, qt, method),
               "bd_quality_db": bd_quality(ra, qa, rt, qt, method)}
        for name, (rt, qt) in curves.items() if name != anchor
    }


def envelope(rates, quality) -> np.ndarray:
    """Indices of the points on the upper envelope of a curve, in increasing rate.

    ``rates``, ``quality``: 1-D, one value per point (CBR, dB). A point is kept when no
    other point has a rate <= its rate and a quality >= its quality, strictly better in
    one (rates compared to 12 decimals, as :func:`_too_few` does); of identical points
    the first is kept. The kept points increase strictly in both rate and quality: the
    best quality reachable within each rate budget, at the rates where it changes.
    """
    rates = np.round(np.asarray(rates, np.float64), 12)
    quality = np.asarray(quality, np.float64)
    if rates.ndim != 1 or rates.shape != quality.shape:
        raise ValueError(f"envelope: rates and quality must be 1-D of one length, "
                         f"got {rates.shape} and {quality.shape}")
    order = np.lexsort((np.arange(rates.size), -quality, rates))
    kept, best = [], -np.inf
    for i in order:
        if quality[i] > best:
            kept.append(i)
            best = quality[i]
    return np.asarray(kept, np.int64)


def _delta(fn, anchor, test, method: str) -> tuple[float | None, str | None, str | None]:
    """``(value, reason it is null, library warning)`` of one BD delta."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = fn(*anchor, *test, method)
        except ValueError as err:
            return None, str(err), None
    notes = [str(w.message) for w in caught if "overlap" in str(w.message).lower()]
    return value, None, "; ".join(notes) or None


def _too_few(name: str, rates: np.ndarray) -> str | None:
    distinct = np.unique(np.round(rates, 12))
    if distinct.size < MIN_RATE_POINTS:
        return (f"curve {name!r} has {distinct.size} distinct rate point(s) at this SNR "
                f"(BD needs >= {MIN_RATE_POINTS})")
    if distinct.size < rates.size:
        return f"curve {name!r} has systems at the same rate"
    return None


def bd_section(eval_config: Mapping, systems: Mapping[str, Mapping],
               method: str = "pchip") -> dict | None:
    """The ``bd`` section of ``results.json``, or ``None`` when ``eval_config`` (a
    scenario's ``eval`` section as a dict) names no ``bd_anchor``.

    ``systems``: name -> mapping with the per-SNR lists ``snr_db``, ``cr`` and
    ``psnr_db`` (the results' systems, possibly a subset of the scenario's). Curves:
    ``eval_config["bd_curves"]`` (curve name -> system names), every other system alone;
    the curves named in ``eval_config["bd_envelope"]`` are reduced to their upper
    envelope (:func:`envelope`) at each SNR. Returns ``{"anchor", "method", "rate",
    "min_rate_points", "curves", "snr_db", "deltas", "envelope"}`` with
    ``deltas[curve] = {"bd_rate_percent", "bd_psnr_db", "notes"}``, each a list aligned
    with ``snr_db`` (the anchor's SNR grid); a ``None`` delta has its reason in ``notes``,
    as does a library warning (partial overlap) beside a number. ``envelope[curve]``: per
    SNR, the systems the envelope kept (in increasing CBR), ``None`` where the curve was
    not evaluated.
    """
    anchor = eval_config.get("bd_anchor")
    if anchor is None:
        return None
    _check_method(method)
    grouped = {c: list(names) for c, names in (eval_config.get("bd_curves") or {}).items()}
    member = {n for names in grouped.values() for n in names}
    curves = {c: [n for n in names if n in systems] for c, names in grouped.items()}
    curves.update({n: [n] for n in systems if n not in member})
    curves = {c: names for c, names in curves.items() if names}
    enveloped = [c for c in eval_config.get("bd_envelope") or [] if c in curves]
    first = curves[anchor][0] if anchor in curves else next(iter(systems))
    snrs = list(systems[first]["snr_db"])

    def points(curve: str, snr: float) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
        """The curve's ``(CBRs, PSNRs, system names)`` at ``snr`` (its envelope when
        the curve is in ``bd_envelope``), ``None`` when a system lacks this SNR."""
        rates, psnrs = [], []
        for name in curves[curve]:
            grid = list(systems[name]["snr_db"])
            if snr not in grid:
                return None
            i = grid.index(snr)
            rates.append(systems[name]["cr"][i] / 2.0)
            psnrs.append(systems[name]["psnr_db"][i])
        rates, psnrs = np.asarray(rates, np.float64), np.asarray(psnrs, np.float64)
        names = list(curves[curve])
        if curve in enveloped:
            keep = envelope(rates, psnrs)
            rates, psnrs, names = rates[keep], psnrs[keep], [names[i] for i in keep]
        return rates, psnrs, names

    def too_few(curve: str, rates: np.ndarray) -> str | None:
        reason = _too_few(curve, rates)
        if reason and curve in enveloped:
            reason += (f" after its envelope (best configuration per CBR) kept {rates.size} "
                       f"of {len(curves[curve])} points")
        return reason

    deltas: dict[str, dict] = {}
    for curve in curves:
        if curve == anchor:
            continue
        entry: dict[str, list] = {"bd_rate_percent": [], "bd_psnr_db": [], "notes": []}
        for snr in snrs:
            ref = points(anchor, snr) if anchor in curves else None
            test = points(curve, snr)
            if ref is None or test is None:
                reason = (f"curve {anchor if ref is None else curve!r} was not evaluated "
                          "at this SNR in this run")
            else:
                reason = too_few(anchor, ref[0]) or too_few(curve, test[0])
            if reason:
                entry["bd_rate_percent"].append(None)
                entry["bd_psnr_db"].append(None)
                entry["notes"].append(reason)
                continue
            rate, why_rate, warn_rate = _delta(bd_rate, ref[:2], test[:2], method)
            psnr, why_psnr, warn_psnr = _delta(bd_quality, ref[:2], test[:2], method)
            notes = [f"BD-rate: {why_rate or warn_rate}" if why_rate or warn_rate else None,
                     f"BD-PSNR: {why_psnr or warn_psnr}" if why_psnr or warn_psnr else None]
            entry["bd_rate_percent"].append(rate)
            entry["bd_psnr_db"].append(psnr)
            entry["notes"].append("; ".join(n for n in notes if n) or None)
        deltas[curve] = entry
    kept = {}
    for curve in enveloped:
        at = [points(curve, snr) for snr in snrs]
        kept[curve] = [None if p is None else p[2] for p in at]
    return {"anchor": anchor, "method": method, "rate": RATE_AXIS,
            "min_rate_points": MIN_RATE_POINTS, "curves": curves, "snr_db": snrs,
            "deltas": deltas, "envelope": kept}


def section_of_run(scenario: Mapping, systems: Mapping) -> dict | None:
    """:func:`bd_section` of a run: ``scenario`` the resolved scenario as a dict (its
    ``eval`` section names the anchor), ``systems`` name -> ``SystemResults``."""
    return bd_section(scenario.get("eval", {}), {n: s.model_dump() for n, s in systems.items()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m semsim.report.bd",
        description="Bjontegaard deltas of a run's results.json, over the curves its "
                    "resolved scenario names (eval.bd_curves, eval.bd_envelope)")
    parser.add_argument("results", type=Path)
    parser.add_argument("--anchor", help="anchor curve or system (default: the scenario's "
                                         "eval.bd_anchor)")
    parser.add_argument("--method", default="pchip", choices=METHODS)
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text(encoding="utf-8"))
    eval_config = dict(results["scenario"].get("eval") or {})
    if args.anchor is not None:
        eval_config["bd_anchor"] = args.anchor
    anchor = eval_config.get("bd_anchor")
    if anchor is None:
        parser.error("the run's scenario names no eval.bd_anchor; pass --anchor")
    grouped = eval_config.get("bd_curves") or {}
    alone = [n for n in results["systems"] if all(n not in m for m in grouped.values())]
    if anchor not in grouped and anchor not in alone:
        parser.error(f"--anchor {anchor!r} is not a curve of this run; curves: "
                     f"{', '.join([*grouped, *alone])}")
    section = bd_section(eval_config, results["systems"], args.method)
    text = json.dumps(section, indent=2)
    (args.results.parent / "bd.json").write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
