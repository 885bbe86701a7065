"""semsim.scenario: YAML scenario files, their schema and the runner.

A scenario file (``scenarios/*.yaml``; read with ``yaml.safe_load``; unknown keys are
errors everywhere)::

    name: mu_mimo_4users                 # also the default run directory runs/<name>-<profile>
    description: Multi-user paper, Table IV (K = 4) ...   # what it reproduces
    seed: 0
    link:                                # single user: nt + nr; multi-user: users (K),
      nr: 4                              #   antennas_per_user (default 1) + nr (M)
      users: 4
      fading: block                      # block | fast | none
      rx_correlation: 0.0                # exponential model coefficients in [0, 1)
      tx_correlation: 0.0
      csi: {mode: ls, pilots: 4}         # perfect | {mode: ls, pilots} |
                                         #   {mode: noisy, error_var: <var> | noise}
      detector: lmmse                    # lmmse | zf (zf needs nr >= streams)
    snr: {train_db: [0, 25], eval_db: [0, 5, 10, 15, 20, 25]}   # dB, within -20..60
    data: {source: builtin, image_size: 32, test_images: 64}    # builtin | cifar10 | folder
    systems:
      - {name: multiuser, type: multiuser, params: {...}}       # params: the type's model
      - {name: separation, type: separation, match_cr_of: multiuser, params: {...}}
    train: {steps: 1000, batch_size: 32, learning_rate: 0.001, optimizer: adam,
            max_seconds: 600}            # or epochs (+ steps_per_epoch)
    eval: {batch_size: 32, samples: 4}
    output_dir: runs/mine                # optional
    profile: quick                       # profile applied when --profile is not given
    profiles:                            # quick | paper: partial overrides of train, data,
      quick: {train: {steps: 40}, systems: {multiuser: {params: {num_maps: 8}}}}
      paper: {data: {source: cifar10}}   # eval, snr and systems' params / train_snr_db

:mod:`.schema` holds the models, :mod:`.loader` reads and validates files (every
problem on its own line), :mod:`.runner` runs a resolved scenario.
"""

from pathlib import Path

#: The scenario files shipped with semsim (``scenarios/`` of the source tree).
SCENARIOS_DIR = Path(__file__).resolve().parents[2] / "scenarios"
