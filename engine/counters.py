"""Reading the kernel's CPU counters cheaply: per-core times, per-process and per-thread CPU.

The sampler's readers, apart from its loop: psutil everywhere, and on Linux the same counters
from /proc files kept open (one ``pread`` each) and from each thread's CPU-time clock. Each
function here reads; none keeps a history (the :class:`~engine.sampler.Sampler` takes the
differences between two reads).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil

# Busy and idle fields of psutil.cpu_times(). Linux already counts guest time inside user and
# guest_nice inside nice, so the guest fields are not added again. Missing fields (other
# platforms have fewer) count as 0.
_BUSY = ("user", "nice", "system", "irq", "softirq", "steal")
_IDLE = ("idle", "iowait")
_USER = ("user", "nice")
_SYSTEM = ("system", "irq", "softirq")

_HAS_CPU_NUM = hasattr(psutil.Process, "cpu_num")
_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied)

#: Resident memory read through psutil (this process; own processes and workers where no
#: stat file is kept open, which has it on every tick's line) is read at most this often;
#: the samples in between repeat the last read. CPU is read every tick.
RSS_REFRESH_S = 1.0


def _self_cpu_reader() -> Callable[[], float]:
    """This process's user+system CPU seconds: ``getrusage(RUSAGE_SELF)`` where there is one
    (one syscall, no file to open; the kernel's same per-process counters that psutil reads
    from /proc/self/stat, in microseconds instead of clock ticks), else psutil."""
    try:
        import resource

        getrusage = resource.getrusage
        who = resource.RUSAGE_SELF
        getrusage(who)
    except (ImportError, AttributeError, OSError):  # pragma: no cover - Windows
        proc = psutil.Process()

        def via_psutil() -> float:
            ct = proc.cpu_times()
            return ct.user + ct.system

        return via_psutil

    def via_rusage() -> float:
        ru = getrusage(who)
        return ru.ru_utime + ru.ru_stime

    return via_rusage


def _fields(ct: Any, names: tuple[str, ...]) -> tuple[float, ...]:
    return tuple(getattr(ct, n, 0.0) for n in names)


class _Core:
    """One core's counters at one read: (busy, idle, user, system) seconds."""

    __slots__ = ("busy", "idle", "system", "user")

    def __init__(self, busy: float, idle: float, user: float, system: float) -> None:
        self.busy = busy
        self.idle = idle
        self.user = user
        self.system = system

    @classmethod
    def of(cls, ct: Any) -> _Core:
        """From one of ``psutil.cpu_times(percpu=True)``'s tuples."""
        return cls(sum(_fields(ct, _BUSY)), sum(_fields(ct, _IDLE)), sum(_fields(ct, _USER)),
                   sum(_fields(ct, _SYSTEM)))


def _read_cores() -> list[_Core]:
    return [_Core.of(ct) for ct in psutil.cpu_times(percpu=True)]


# -- Linux: the very counters psutil reads, through /proc files kept open ---------------------
# psutil opens, stats, seeks, reads and closes a /proc file for every figure (8 syscalls and
# a path lookup each); at 10 Hz that, not the counters, was most of a tick. A descriptor kept
# open is read again with one pread, and the kernel regenerates the file's content for each
# read, so the figures are the same kernel counters, as fresh, parsed the way psutil parses
# them (clock ticks / SC_CLK_TCK). A /proc/<pid> descriptor also pins that very process: once it
# is reaped, reads fail (ESRCH) instead of reading a new process that reused the pid.
_CLK_TCK = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0
_PROC_STAT_BYTES = 1 << 16
_PID_STAT_BYTES = 4096
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _parse_pid_stat(data: bytes) -> tuple[float, int, int]:
    """(utime + stime in seconds, the core it last ran on, resident memory in bytes) from a
    /proc/<pid>/stat or /proc/<pid>/task/<tid>/stat line (the command name, field 2, may hold
    spaces and ')'). Its rss field is the page count psutil's ``memory_info().rss`` reads
    from statm, times the page size, as the kernel's fast sum: recent kernels give statm the
    exact one, which can differ by the pages still in per-core batches (72 kB of 95 MB
    measured on 6.18; a few hundred kB at most on 2 cores)."""
    f = data[data.rindex(b")") + 2:].split(None, 37)
    return (int(f[11]) + int(f[12])) / _CLK_TCK, int(f[36]), int(f[21]) * _PAGE


def _parse_proc_stat(data: bytes, ncpu: int) -> list[_Core] | None:
    """Per-core counters from /proc/stat (the lines cpu0, cpu1, ...: user nice system idle
    iowait irq softirq steal, in clock ticks; guest time is already inside user, as psutil and
    :data:`_BUSY` assume). None if the core lines did not end inside ``data``."""
    cores: list[_Core] = []
    lines = data.split(b"\n", ncpu + 2)
    for line in lines[1:]:  # lines[0] is the all-core total
        if not line.startswith(b"cpu"):
            return cores if cores else None
        v = [int(x) for x in line.split()[1:9]]
        v += [0] * (8 - len(v))
        user, nice, system, idle, iowait, irq, softirq, steal = v
        t = _CLK_TCK
        cores.append(_Core((user + nice + system + irq + softirq + steal) / t,
                           (idle + iowait) / t, (user + nice) / t, (system + irq + softirq) / t))
    return None


def _proc_works() -> bool:
    """True where /proc reads parse as expected (Linux); else the sampler uses psutil only."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open(f"/proc/{os.getpid()}/stat", "rb") as f:
            cpu_s, _, _ = _parse_pid_stat(f.read(_PID_STAT_BYTES))
        with open("/proc/stat", "rb") as f:
            cores = _parse_proc_stat(f.read(_PROC_STAT_BYTES), os.cpu_count() or 1)
    except (OSError, ValueError, IndexError):
        return False
    return bool(cores) and cpu_s >= 0.0


#: Read /proc through kept descriptors (Linux); False: psutil only (tests switch it off to
#: check that path too; takes effect for Samplers made afterwards).
FAST_PROC = _proc_works()


def _thread_clock(tid: int) -> int:
    """The CPU-time clock of thread ``tid`` of this process (Linux's MAKE_THREAD_CPUCLOCK(tid,
    CPUCLOCK_SCHED), the id ``pthread_getcpuclockid`` returns, for any native thread id)."""
    return ((~tid) << 3) | 6


def _thread_clocks_work() -> bool:
    """True where :func:`_thread_clock` names the same clock ``pthread_getcpuclockid`` does
    (Linux), so any of our threads' CPU time, Python's or not, is one clock_gettime."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        cid = time.pthread_getcpuclockid(threading.get_ident())
        return cid == _thread_clock(threading.get_native_id()) and time.clock_gettime_ns(cid) > 0
    except (AttributeError, OSError, OverflowError, ValueError):  # pragma: no cover
        return False


#: Read each thread's CPU time from its CPU-time clock (Linux; used with FAST_PROC): the
#: kernel's same per-thread counter /proc/<pid>/task/<tid>/stat shows in clock ticks, in
#: nanoseconds, one system call per thread with nothing to parse.
THREAD_CLOCKS = _thread_clocks_work()


def fd_budget() -> int:
    """How many /proc files one Sampler may keep open: 128, fewer under a low open-files
    limit (the workloads need descriptors too: pipes, sockets, files)."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):  # pragma: no cover
        return 32
    if soft == resource.RLIM_INFINITY:
        return 128
    return max(8, min(128, soft // 8))


class KeptFiles:
    """The /proc descriptors one Sampler holds, at most ``budget``. Beyond that, reads go the
    slow way (psutil, or open-read-close): the same figures, at the old cost. Only the thread
    that holds the sampler's tick lock opens, reads or closes them."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.fds: set[int] = set()
        self.closed = False

    def open(self, path: str) -> int:
        """A descriptor for ``path``, or -1 (over budget, closed, or it cannot be opened)."""
        if self.closed or len(self.fds) >= self.budget:
            return -1
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return -1
        self.fds.add(fd)
        return fd

    def close(self, fd: int) -> None:
        if fd in self.fds:
            self.fds.discard(fd)
            os.close(fd)

    def close_all(self) -> None:
        self.closed = True
        fds, self.fds = self.fds, set()
        for fd in fds:
            try:
                os.close(fd)
            except OSError:  # pragma: no cover
                pass
