"""How graphsel's numeric libraries share the CPU: the thread policy.

torch, FAISS, MKL and scikit-learn's gradient boosting run their parallel loops on OpenMP
threads (libgomp), and numpy's matrix products on OpenBLAS threads. Between two loops,
libgomp's idle threads spin by default, waiting for the next one. On a machine whose cores
are busy with other processes, the spinning threads fight those processes and each other
for the cores: with a load of 3-5 on 2 cores, ``graphsel demo`` took 9 min 18 s instead of
37 s with ``OMP_WAIT_POLICY=PASSIVE`` (threads sleep when idle), with identical results.

So ``import graphsel`` (and with it the ``graphsel`` command) puts the policy into the
environment, before torch, FAISS, scikit-learn or numpy's BLAS start their thread pools,
which read it once, when they load. ``GRAPHSEL_THREADS`` chooses the policy:

* unset or ``auto``: ``OMP_WAIT_POLICY=PASSIVE``, and ``OMP_NUM_THREADS``,
  ``MKL_NUM_THREADS`` and ``OPENBLAS_NUM_THREADS`` set to the CPUs this process may use
  (its CPU affinity, capped by a container's CPU quota, which the libraries do not read);
* a positive integer ``N``: the same with ``N`` threads;
* ``off``: nothing is set (the libraries' own defaults).

A variable the user has set always wins: the policy only fills in those that are absent.
The results do not depend on the wait policy; they may on the thread count (floating-point
sums in another order), which is why the count never follows the machine's load.

torch's training and prediction follow a second rule, :func:`training_threads`: under
``auto`` they run on one thread, unless the user set ``OMP_NUM_THREADS`` or torch's thread
count. The small CTR models spend their time in short parallel regions, where waking a
sleeping second thread costs more than it saves (measured on 2 cores, a 4-strategy ML-1M
``graphsel run``: 21.6 s on one thread, 27.2 s on two PASSIVE threads; ``graphsel demo``
100.3 s and 168.2 s), while the large neighbour searches keep using every CPU (ML-1M Documentary's
kNN stage: 1.03-1.09 s on two threads, 1.83 s on one). ``GRAPHSEL_THREADS=N`` trains on ``N``
threads as well, ``off`` leaves torch's count alone, and a model's own ``num_threads``
always wins.

Users who imported torch (or FAISS, scikit-learn) before graphsel call :func:`set_threads`:
it sets the thread counts of the libraries already loaded, but not their wait policy, which
an OpenMP runtime reads only once, when it loads; for that, set ``OMP_WAIT_POLICY=PASSIVE``
in the environment or import graphsel first.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from graphsel.errors import InputError, check_integer

__all__ = ["ENV", "MARK", "THREAD_COUNT_VARIABLES", "TRAINING_THREADS", "apply_policy",
           "policy_environ", "set_threads", "training_threads", "usable_cpus"]

ENV = "GRAPHSEL_THREADS"
WAIT_POLICY = "PASSIVE"
THREAD_COUNT_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
CHOICES = "'auto', 'off' or a positive integer"
MARK = "GRAPHSEL_POLICY_SET"
"""The variables the policy set, as ``NAME=value`` words. Child processes inherit it with the
variables, so they tell the policy's values from a user's (:func:`training_threads`)."""
TRAINING_THREADS = 1
"""torch's intra-op threads for training and prediction under ``auto``."""


def quota_cpus(cpu_max: str) -> int | None:
    """CPUs granted by a cgroup v2 ``cpu.max`` line (``"<quota> <period>"``), rounded up.

    >>> quota_cpus("150000 100000"), quota_cpus("max 100000"), quota_cpus("")
    (2, None, None)
    """
    fields = cpu_max.split()
    if len(fields) != 2 or not all(field.isdigit() for field in fields) or int(fields[1]) == 0:
        return None
    return max(1, math.ceil(int(fields[0]) / int(fields[1])))


def usable_cpus(cgroup: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The CPUs this process may use: its CPU affinity, capped by the cgroup v2 CPU quota.

    Args:
        cgroup: the ``cpu.max`` file of the process's cgroup. Default the root of the
            cgroup v2 mount, which is the container's own inside a container.

    Returns:
        At least 1.
    """
    if hasattr(os, "sched_getaffinity"):
        cpus = len(os.sched_getaffinity(0))
    else:  # pragma: no cover (macOS, Windows)
        cpus = os.cpu_count() or 1
    try:
        quota = quota_cpus(cgroup.read_text())
    except OSError:
        quota = None
    return max(1, min(cpus, quota) if quota else cpus)


def _threads(setting: str) -> int | None:
    """The thread count of a ``GRAPHSEL_THREADS`` value: None for ``auto`` and ``off``.

    >>> _threads("3"), _threads("auto"), _threads(" OFF ")
    (3, None, None)
    >>> _threads("0")
    Traceback (most recent call last):
    ...
    graphsel.errors.InputError: GRAPHSEL_THREADS='0' is not 'auto', 'off' or a positive integer
    """
    if setting.strip().lower() in ("", "auto", "off"):
        return None
    if not setting.strip().isdigit() or int(setting) < 1:
        raise InputError(f"{ENV}={setting!r} is not {CHOICES}")
    return int(setting)


def policy_environ(environ: Mapping[str, str], cpus: int) -> dict[str, str]:
    """The variables the policy adds to ``environ``: only those the user has not set.

    Args:
        environ: the environment, e.g. ``os.environ``.
        cpus: the thread count of ``auto`` (see :func:`usable_cpus`).

    Returns:
        Variable name -> value, empty with ``GRAPHSEL_THREADS=off``.

    Raises:
        InputError: ``GRAPHSEL_THREADS`` is not ``auto``, ``off`` or a positive integer.

    >>> policy_environ({}, cpus=2)["OMP_WAIT_POLICY"], policy_environ({}, cpus=2)["OMP_NUM_THREADS"]
    ('PASSIVE', '2')
    >>> policy_environ({"OMP_WAIT_POLICY": "ACTIVE", "GRAPHSEL_THREADS": "1"}, cpus=2)
    {'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'OPENBLAS_NUM_THREADS': '1'}
    >>> policy_environ({"GRAPHSEL_THREADS": "off"}, cpus=2)
    {}
    """
    setting = environ.get(ENV, "auto")
    if setting.strip().lower() == "off":
        return {}
    threads = _threads(setting) or cpus
    wanted = {"OMP_WAIT_POLICY": WAIT_POLICY,
              **{name: str(threads) for name in THREAD_COUNT_VARIABLES}}
    return {name: value for name, value in wanted.items() if name not in environ}


def apply_policy(environ: MutableMapping[str, str] = os.environ,
                 cpus: int | None = None) -> dict[str, str]:
    """Adds the policy's variables to ``environ``, and :data:`MARK` naming those the policy
    set (these and those a parent process's policy set that still hold their values); what
    ``import graphsel`` runs.

    A bad ``GRAPHSEL_THREADS`` gives a warning (an import cannot fail on it) and the
    ``auto`` policy.

    Args:
        environ: the environment. Default ``os.environ``.
        cpus: the thread count of ``auto``. Default :func:`usable_cpus`.

    Returns:
        The variables added (:data:`MARK` aside).
    """
    cpus = cpus or usable_cpus()
    try:
        added = policy_environ(environ, cpus)
    except InputError as exc:
        warnings.warn(f"{exc}; using 'auto'", RuntimeWarning, stacklevel=2)
        added = policy_environ({**environ, ENV: "auto"}, cpus)
    environ.update(added)
    kept = {name: value for name, value in policy_marks(environ).items()
            if environ.get(name) == value}
    if kept or added:
        _mark(environ, {**kept, **added})
    return added


def _mark(environ: MutableMapping[str, str], marks: Mapping[str, str]) -> None:
    environ[MARK] = " ".join(f"{name}={value}" for name, value in marks.items())


def policy_marks(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables the policy set in ``environ`` (or in a parent process), from :data:`MARK`.

    >>> policy_marks({MARK: "OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=2"})
    {'OMP_WAIT_POLICY': 'PASSIVE', 'OMP_NUM_THREADS': '2'}
    """
    return dict(word.partition("=")[::2] for word in environ.get(MARK, "").split() if "=" in word)


def training_threads(requested: int | None = None, *, environ: Mapping[str, str] | None = None,
                     torch_threads: int | None = None) -> int | None:
    """torch's thread count for training and prediction (the trainers ask this, once per call).

    The first rule that applies decides:

    1. ``requested`` (a config's ``num_threads``) if it is given;
    2. ``GRAPHSEL_THREADS=off``: None, torch's count is left alone;
    3. ``OMP_NUM_THREADS`` set by the user (not by the policy, see :data:`MARK`): None,
       torch already follows it;
    4. torch's count differs from the ``OMP_NUM_THREADS`` the policy set (someone called
       ``torch.set_num_threads``): None;
    5. ``GRAPHSEL_THREADS=N``: ``N``;
    6. ``auto`` (or unset, or a bad value, which the import warned about):
       :data:`TRAINING_THREADS`, one.

    Args:
        requested: the thread count asked for. Default None: the policy's.
        environ: the environment. Default ``os.environ``.
        torch_threads: torch's current thread count. Default ``torch.get_num_threads()``
            if torch is loaded (rule 4 is skipped when it is not).

    Returns:
        The thread count to set, or None to leave torch's.

    >>> training_threads(environ={MARK: "OMP_NUM_THREADS=2", "OMP_NUM_THREADS": "2"},
    ...                  torch_threads=2)
    1
    >>> training_threads(environ={"OMP_NUM_THREADS": "2"}, torch_threads=2) is None
    True
    """
    if requested is not None:
        return requested
    environ = os.environ if environ is None else environ
    setting = environ.get(ENV, "auto")
    if setting.strip().lower() == "off":
        return None
    policy_count = policy_marks(environ).get("OMP_NUM_THREADS")
    if "OMP_NUM_THREADS" in environ and environ["OMP_NUM_THREADS"] != policy_count:
        return None
    if torch_threads is None and "torch" in sys.modules:
        torch_threads = sys.modules["torch"].get_num_threads()
    if policy_count is not None and torch_threads is not None \
            and str(torch_threads) != policy_count:
        return None
    try:
        return _threads(setting) or TRAINING_THREADS
    except InputError:
        return TRAINING_THREADS


def set_threads(threads: int | None = None) -> int:
    """Sets the thread count of the numeric libraries, including those already loaded.

    For code that imported torch, FAISS or scikit-learn before graphsel: sets
    ``torch.set_num_threads``, FAISS's OpenMP threads and, through threadpoolctl, every
    loaded OpenMP and BLAS runtime (numpy's OpenBLAS, MKL, scikit-learn's libgomp); for
    libraries loaded later, the environment variables of the policy. It cannot change the
    wait policy of an OpenMP runtime already loaded (libgomp reads ``OMP_WAIT_POLICY`` once,
    when it loads): for that, set the variable before starting Python or import graphsel
    before torch. The count is the caller's choice from then on: torch's training and
    prediction keep it (:func:`training_threads`).

    Args:
        threads: the thread count. Default None: ``OMP_NUM_THREADS`` if it is set (by the
            user, or by the policy at import), else ``GRAPHSEL_THREADS`` if it is a number,
            else :func:`usable_cpus`.

    Returns:
        The thread count set.

    Raises:
        InputError: ``threads`` is not a positive integer, or (with the default)
            ``GRAPHSEL_THREADS`` is not ``auto``, ``off`` or a positive integer.
    """
    if threads is None:
        threads = (_omp_threads() or _threads(os.environ.get(ENV, "auto"))
                   or usable_cpus())
    threads = check_integer("threads", threads, 1)
    for name in THREAD_COUNT_VARIABLES:
        os.environ[name] = str(threads)
    # the counts are the caller's now, not the policy's (training follows them)
    _mark(os.environ, {name: value for name, value in policy_marks(os.environ).items()
                       if name not in THREAD_COUNT_VARIABLES})
    # only runtimes already loaded are touched: importing torch here would cost seconds
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    if "faiss" in sys.modules:
        sys.modules["faiss"].omp_set_num_threads(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)  # not used as a context: the limits stay
    return threads


def _omp_threads() -> int | None:
    """``OMP_NUM_THREADS`` (its first level, as in ``"4,2"``) if it is a positive integer."""
    first = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(first) if first.isdigit() and int(first) > 0 else None
