"""``semsim ber``: Monte-Carlo BER/BLER of a classic digital link (QAM, optional LDPC, MIMO).

Examples::

    semsim ber --modulation qpsk --fading none --snr-db 0,4,8
    semsim ber --nt 4 --nr 4 --modulation 16qam --code ldpc5g --k 512 --n 1024 --snr-db 10,15
    semsim ber --users 2 --nr 4 --code dvbs2 --frame short --csi ls --pilots 4 --json

``--snr-db`` is the per-receive-antenna average SNR in dB (see
:mod:`semsim.phy.digital`): Es/N0 of a single stream; ``Nt Es/N0`` with ``Nt`` faded streams.

Each SNR point stops once it has seen ``--target-errors`` bit errors or
``--target-block-errors`` block errors, or spent ``--bits`` information bits (the budget),
and reports its BER (and BLER) with a 95 % Clopper-Pearson interval: a point without
errors gives BER 0 with the interval's upper end, not a bare 0.
``--json`` prints :meth:`semsim.phy.ber.BERResult.to_dict` as one object (``bler`` is
``null`` for an uncoded link). ``--out DIR`` writes ``ber.csv``, ``ber.json`` and
``ber.png`` (the curve with its intervals, and the closed-form BER of
:mod:`semsim.phy.theory` where one exists: uncoded SISO with perfect CSI).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from pathlib import Path

from semsim.cli.argtypes import non_negative_int, positive_int
from semsim.cli.main import EXIT_OK, EXIT_USAGE

MODULATIONS = ("bpsk", "qpsk", "16qam", "64qam", "256qam")


def _snr_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"--snr-db must be comma-separated numbers (dB), got {text!r}") from err
    if not values:
        raise argparse.ArgumentTypeError("--snr-db needs at least one value")
    return values


def register(subparsers) -> None:
    """Add the ``ber`` sub-command."""
    p = subparsers.add_parser(
        "ber", help="BER/BLER of a classic digital link (QAM + LDPC over MIMO)",
        description="Monte-Carlo bit and block error rates of QAM (optionally LDPC-coded) "
                    "spatial multiplexing over a flat Rayleigh MIMO link with linear detection.")
    ant = p.add_argument_group("antennas")
    ant.add_argument("--nt", type=positive_int, default=None,
                     help="transmit antennas = streams, single user (default 1)")
    ant.add_argument("--nr", type=positive_int, default=None,
                     help="receive antennas (default: --nt, or --users)")
    ant.add_argument("--users", type=positive_int, default=None,
                     help="single-antenna users of a multi-user uplink (instead of --nt)")
    p.add_argument("--modulation", choices=MODULATIONS, default="qpsk")
    code = p.add_argument_group("channel code")
    code.add_argument("--code", choices=("none", "ldpc5g", "dvbs2"), default="none")
    code.add_argument("--k", type=positive_int, default=None,
                      help="information bits per codeword (ldpc5g)")
    code.add_argument("--n", type=positive_int, default=None,
                      help="code bits per codeword (ldpc5g)")
    code.add_argument("--frame", choices=("normal", "short"), default=None,
                      help="DVB-S2 frame, rate 1/2 (dvbs2; default normal)")
    csi = p.add_argument_group("channel state information")
    csi.add_argument("--csi", choices=("perfect", "ls", "noisy"), default="perfect")
    csi.add_argument("--pilots", type=positive_int, default=None,
                     help="LS pilot length in channel uses (csi ls; default Nt)")
    csi.add_argument("--csi-error-var", type=float, default=None,
                     help="variance of H_hat - H entries (csi noisy; default: noise variance)")
    p.add_argument("--detector", choices=("lmmse", "zf"), default="lmmse")
    p.add_argument("--fading", choices=("block", "fast", "none"), default="block",
                   help="block: one H per codeword; fast: one H per channel use; none: AWGN")
    p.add_argument("--snr-db", type=_snr_list, default=[0.0, 5.0, 10.0],
                   help="comma-separated per-receive-antenna SNRs (Es/N0 per rx antenna), dB; "
                        "write --snr-db=-5,0 when the first value is negative")
    p.add_argument("--bits", type=positive_int, default=100_000,
                   help="information bits per SNR point at most (the budget; whole batches)")
    p.add_argument("--target-errors", type=positive_int, default=100, metavar="N",
                   help="stop an SNR point after N bit errors (default 100)")
    p.add_argument("--target-block-errors", type=positive_int, default=None, metavar="N",
                   help="stop an SNR point after N block (codeword) errors")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="also write ber.csv, ber.json and ber.png into DIR")
    p.set_defaults(func=run, needs_tensorflow=True)


def _link_kwargs(args) -> dict:
    """Validate option combinations and translate them to :class:`DigitalLink` arguments."""
    if args.users is not None and args.nt is not None:
        raise ValueError("use either --nt (single user) or --users (multi-user), not both")
    if (args.k is not None or args.n is not None) and args.code != "ldpc5g":
        raise ValueError(f"--k/--n are only used with --code ldpc5g, got --code {args.code}")
    if args.code == "ldpc5g" and (args.k is None or args.n is None):
        raise ValueError("--code ldpc5g needs both --k and --n")
    if args.frame is not None and args.code != "dvbs2":
        raise ValueError(f"--frame is only used with --code dvbs2, got --code {args.code}")
    if args.pilots is not None and args.csi != "ls":
        raise ValueError(f"--pilots is only used with --csi ls, got --csi {args.csi}")
    if args.csi_error_var is not None and args.csi != "noisy":
        raise ValueError(f"--csi-error-var is only used with --csi noisy, got --csi {args.csi}")
    if args.csi_error_var is not None and args.csi_error_var < 0:
        raise ValueError(f"--csi-error-var must be >= 0, got {args.csi_error_var}")
    kwargs = dict(modulation=args.modulation, code=args.code, k=args.k, n=args.n,
                  frame=args.frame or "normal", fading=args.fading, csi=args.csi,
                  pilots=args.pilots, csi_error_var=args.csi_error_var,
                  detector=args.detector)
    if args.users is not None:
        kwargs.update(users=args.users, antennas_per_user=1,
                      num_rx_ant=args.nr if args.nr is not None else args.users)
    else:
        nt = args.nt if args.nt is not None else 1
        kwargs.update(num_tx_ant=nt, num_rx_ant=args.nr if args.nr is not None else nt)
    return kwargs


def _describe(link) -> str:
    return (f"{link.modulation}, code {link.code_name} (k={link.k}, n={link.n}), "
            f"{link.num_tx_ant}x{link.num_rx_ant}, fading {link.fading}, csi {link.csi_mode}, "
            f"detector {link.detector_name}")


def _table(result, link) -> str:
    ci = result.ber_interval()
    lines = [f"# {_describe(link)}",
             f"{'SNR [dB]':>9}  {'BER':>10}  {'95% CI of BER':>23}  {'BLER':>10}  {'bits':>12}"
             f"  {'errors':>10}"]
    bler = result.bler or [None] * len(result.snr_db)
    for snr, ber, (low, high), bl, bits, err in zip(result.snr_db, result.ber, ci, bler,
                                                    result.bits, result.errors, strict=True):
        bl_text = "-" if bl is None else f"{bl:.3e}"
        interval = f"[{low:.2e}, {high:.2e}]"
        lines.append(f"{snr:9.2f}  {ber:10.3e}  {interval:>23}  {bl_text:>10}  {bits:12d}  "
                     f"{err:10d}")
    return "\n".join(lines)


def closed_form_ber(link, snr_db: list[float]) -> list[float] | None:
    """Exact BER of :mod:`semsim.phy.theory` where it applies (uncoded, one stream, one
    receive antenna, perfect CSI: AWGN or Rayleigh), else ``None``."""
    from semsim.phy import theory

    if (link.codec is not None or link.num_tx_ant != 1 or link.num_rx_ant != 1
            or link.csi_mode != "perfect"):
        return None
    curve = theory.ber_awgn if link.fading == "none" else theory.ber_rayleigh
    return [float(v) for v in curve(link.modulation, snr_db)]


def write_outputs(result, link, out: Path) -> list[Path]:
    """``ber.json`` (the ``--json`` object plus the link and the closed form), ``ber.csv``
    (one row per SNR point) and ``ber.png`` into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    data = result.to_dict()
    theory = closed_form_ber(link, result.snr_db)
    data.update(link=_describe(link), closed_form_ber=theory)
    (out / "ber.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    with open(out / "ber.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["snr_db", "ber", "ber_ci_low", "ber_ci_high", "bler", "bler_ci_low",
                         "bler_ci_high", "bits", "errors", "blocks", "block_errors",
                         "closed_form_ber"])
        for i, snr in enumerate(result.snr_db):
            bler = data["bler"][i] if data["bler"] else ""
            bler_ci = data["bler_ci"][i] if data["bler_ci"] else ["", ""]
            writer.writerow([snr, data["ber"][i], *data["ber_ci"][i], bler, *bler_ci,
                             result.bits[i], result.errors[i], result.blocks[i],
                             result.block_errors[i], "" if theory is None else theory[i]])
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ber = [max(b, 0.0) for b in data["ber"]]
    seen = [i for i, e in enumerate(result.errors) if e > 0]
    unseen = [i for i, e in enumerate(result.errors) if e == 0]
    if seen:
        ax.errorbar([result.snr_db[i] for i in seen], [ber[i] for i in seen],
                    yerr=[[ber[i] - data["ber_ci"][i][0] for i in seen],
                          [data["ber_ci"][i][1] - ber[i] for i in seen]],
                    fmt="o-", capsize=3, label="simulated BER (95% CI)")
    if unseen:
        ax.plot([result.snr_db[i] for i in unseen], [data["ber_ci"][i][1] for i in unseen],
                "v", color="C0", label="no error: upper end of the 95% CI")
    if theory is not None:
        ax.plot(result.snr_db, theory, "k--", label="closed form")
    if data["bler"] is not None:
        ax.plot(result.snr_db, data["bler"], "s:", color="C1", label="simulated BLER")
    ax.set_yscale("log")
    ax.set_xlabel("SNR per receive antenna [dB]")
    ax.set_ylabel("error rate")
    ax.set_title(_describe(link), fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "ber.png", dpi=120)
    plt.close(fig)
    return [out / "ber.json", out / "ber.csv", out / "ber.png"]


def run(args) -> int:
    """Run the simulation; returns the exit code."""
    from semsim.phy.ber import simulate_ber
    from semsim.phy.digital import DigitalLink

    try:
        link = DigitalLink(**_link_kwargs(args))
    except ValueError as err:
        print(f"semsim ber: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    result = simulate_ber(link, args.snr_db, args.bits, seed=args.seed,
                          progress=not args.json, target_bit_errors=args.target_errors,
                          target_block_errors=args.target_block_errors)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(_table(result, link))
    if args.out is not None:
        paths = write_outputs(result, link, args.out)
        logging.getLogger("semsim").info("wrote %s", ", ".join(str(p) for p in paths))
    return EXIT_OK
