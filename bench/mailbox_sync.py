#!/usr/bin/env python3
"""`cutover mailbox sync` against dsync (and other peers) on the same lab, in the same run.

    .venv/bin/python bench/mailbox_sync.py                    # 5,000-message / ~203 MB corpus
    .venv/bin/python bench/mailbox_sync.py --messages 1000 --rounds 1 --plan-mailboxes 0
    .venv/bin/python bench/mailbox_sync.py --baseline /tmp/base   # + another checkout, same rounds

Uses the IMAP lab in ../shared/bench (override with --lab-tools): `imap-lab` starts two Dovecot
servers on loopback, `make-corpus` loads the seeded corpus (duplicates, no Message-ID, 8-bit
headers, keywords, 5-10 MB messages) into the source account. Then, `--rounds` times, each tool
in turn goes through `bench-copy` (a full copy into an emptied target checked by `verify-copy`,
then `--noop-reps` no-op re-runs, peak RSS from /usr/bin/time): interleaving the tools round by
round keeps a busy machine's load swings from favouring one of them. Prints the medians and the
ratios cutover/peer for full copy, no-op re-run and peak RSS, then:

- the no-op re-run inside one process (what the engine costs once Python is loaded);
- a plan step whose `--plan-mailboxes` mailboxes are all up to date (`cutover run` of a
  mailbox.sync step over that many inventory items, after a first plan copied them).

Nothing of the project's tests uses this.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# ../shared/bench from the checkout (or from a worktree one level further down)
DEFAULT_TOOLS = next((p / "shared" / "bench" for p in ROOT.parents
                      if (p / "shared" / "bench" / "imap-lab").exists()),
                     ROOT.parent / "shared" / "bench")
PASSWORD = "secret"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lab-tools", type=Path, default=DEFAULT_TOOLS)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3, help="full copies per tool")
    parser.add_argument("--noop-reps", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--peers", nargs="*", default=["dsync"])
    parser.add_argument("--plan-mailboxes", type=int, default=200)
    parser.add_argument("--base-port", type=int, default=31143)
    parser.add_argument("--only-plan-step", action="store_true",
                        help="measure only the plan step (no corpus, no full copies)")
    parser.add_argument("--baseline", type=Path, metavar="CHECKOUT",
                        help="also time the cutover of another checkout (e.g. `git worktree add "
                             "/tmp/base main`) in the same rounds, as `baseline`")
    parser.add_argument("--keep", action="store_true", help="leave the lab directory")
    args = parser.parse_args()
    tools = args.lab_tools.resolve()
    if not (tools / "imap-lab").exists():
        sys.exit(f"no imap-lab in {tools} (use --lab-tools)")
    lab = Path(tempfile.mkdtemp(prefix="cutover-bench-lab-"))
    work = lab / "work"
    base = args.base_port
    ports = {"LAB_SOURCE_PORT": base, "LAB_TARGET_PORT": base + 100,
             "LAB_SOURCE_LMTP_PORT": base + 1, "LAB_TARGET_LMTP_PORT": base + 101}
    # Plain names: the lab's passdb looks users up by their local part only.
    plan_users = [f"u{n:03d}" for n in range(1, args.plan_mailboxes + 1)]
    env = dict(os.environ, **{k: str(v) for k, v in ports.items()},
               LAB_USERS=" ".join(["alice", *plan_users]), LAB_PASSWORD=PASSWORD)
    try:
        subprocess.run([tools / "imap-lab", "up", lab], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        if args.only_plan_step:
            print(plan_step(lab, ports, plan_users))
            return 0
        subprocess.run([sys.executable, tools / "make-corpus", "--port",
                        str(ports["LAB_SOURCE_PORT"]), "--user", "alice", "--messages",
                        str(args.messages)], check=True)
        # Time cutover as installed (pip compiles bytecode at install): a checkout run with
        # PYTHONDONTWRITEBYTECODE set (CI, containers) would otherwise recompile every module
        # of the package on each run, ~20 ms that no installed copy pays.
        for checkout in (ROOT, *([args.baseline] if args.baseline else [])):
            subprocess.run([sys.executable, "-m", "compileall", "-q", checkout / "cutover"],
                           check=True, stdout=subprocess.DEVNULL)
        work.mkdir(parents=True, exist_ok=True)
        for round_number in range(1, args.rounds + 1):
            run_round(tools, lab, work / f"round-{round_number}", env, ports, args)
        names = ["cutover", *(["baseline"] if args.baseline else []), *args.peers]
        print()
        print(report(work, names))
        print(engine_noop(ports, lab / "cutover-engine.db"))
        if plan_users:
            print(plan_step(lab, ports, plan_users))
    finally:
        subprocess.run([tools / "imap-lab", "down", lab], env=env, check=False,
                       stdout=subprocess.DEVNULL)
        if not args.keep:
            shutil.rmtree(lab, ignore_errors=True)
    return 0


def run_round(tools: Path, lab: Path, work: Path, env: dict[str, str], ports: dict[str, int],
              args: argparse.Namespace) -> None:
    """One full copy (and its no-op re-runs) by each tool, one tool after the other."""
    work.mkdir(parents=True, exist_ok=True)
    checkouts = {"cutover": ROOT, **({"baseline": args.baseline} if args.baseline else {})}
    for name, checkout in checkouts.items():
        state = lab / f"{name}-state"
        # From the checkout itself: `python -m` puts the working directory first on the path,
        # so a run started elsewhere (another checkout) would time that one's cutover.
        cutover = (f"cd {shlex.quote(str(checkout))} && "
                   f"CUTOVER_SOURCE_PASSWORD={PASSWORD} CUTOVER_TARGET_PASSWORD={PASSWORD} "
                   f"CUTOVER_LOCK_DIR={shlex.quote(str(lab / 'locks'))} "
                   f"PYTHONPATH={shlex.quote(str(checkout))} "
                   f"{shlex.quote(sys.executable)} -m cutover --workspace "
                   f"{shlex.quote(str(lab))} "
                   f"mailbox sync imap://alice@127.0.0.1:{ports['LAB_SOURCE_PORT']} "
                   f"imap://alice@127.0.0.1:{ports['LAB_TARGET_PORT']} --jobs {args.jobs} "
                   f"--state {shlex.quote(str(state / 'cutover.db'))} --json")
        reps = ["--reps", "1", "--noop-reps", str(args.noop_reps)]
        # bench-copy empties the target before each full copy; the identity map goes too.
        subprocess.run([tools / "bench-copy", "--lab", lab, "--name", name, *reps,
                        "--reset", f"rm -rf {shlex.quote(str(state))}",
                        "--log", work / f"{name}.log", "--json", work / f"{name}.json",
                        "--", "sh", "-c", cutover], env=env, check=False)
    if args.peers:
        subprocess.run([tools / "bench-peers", lab, work, *args.peers],
                       env=dict(env, REPS="1", NOOP_REPS=str(args.noop_reps)), check=False)


def engine_noop(ports: dict[str, int], state: Path) -> str:
    """The no-op re-run inside one process: what the engine costs once Python and the CLI
    are loaded (the process figure above adds interpreter start-up and imports)."""
    code = f"""
import statistics, time
from cutover.connectors.imap.store import ImapMailStore, parse_endpoint
from cutover.mailsync.engine import Account, MailSync, SyncOptions
from cutover.mailsync.identity import IdentityMap
from cutover.state import State
def store(port):
    return ImapMailStore(parse_endpoint(f"imap://x@127.0.0.1:{{port}}")[0], lambda: "{PASSWORD}")
account = Account(store({ports['LAB_SOURCE_PORT']}), "alice", store({ports['LAB_TARGET_PORT']}),
                  "alice")
state = State.open("{state}")
identity = IdentityMap.of(state)
MailSync(identity, SyncOptions()).run([account])
times = []
for _ in range(7):
    start = time.perf_counter()
    [result] = MailSync(identity, SyncOptions()).run([account])
    times.append(time.perf_counter() - start)
    assert result.copied == 0 and result.unchanged_folders == result.folders
print(f"cutover no-op re-run inside one process: median {{statistics.median(times):.3f}} s "
      f"per mailbox")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT),
                                   CUTOVER_LOCK_DIR=str(state.parent / "locks")))
    return (done.stdout or done.stderr).strip()


def plan_step(lab: Path, ports: dict[str, int], users: list[str]) -> str:
    """A mailbox.sync step over `users`, every mailbox already up to date: `cutover run`."""
    sys.path.insert(0, str(ROOT))
    from cutover.connectors.imap.store import ImapMailStore, parse_endpoint
    from cutover.connectors.mailstore import NewMessage

    store = ImapMailStore(parse_endpoint(f"imap://x@127.0.0.1:{ports['LAB_SOURCE_PORT']}")[0],
                          lambda: PASSWORD)

    def load(user: str) -> None:
        with store.open(user) as session:
            for folder in ("INBOX", "Sent", "Archive/2024"):
                session.create_folder(folder)
                session.append(folder, [NewMessage(
                    f"From: a@example.org\r\nTo: {user}\r\nSubject: {folder} {n}\r\n"
                    f"Message-ID: <{n}.{folder}.{user}>\r\n\r\nbody {n}\r\n".encode(),
                    frozenset({"\\Seen"} if n % 2 else ())) for n in range(4)])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(load, users))
    workspace = lab / "plan-workspace"
    (workspace / "plans").mkdir(parents=True)
    url = "imap://{user}@127.0.0.1:"
    accounts = "".join(f"\n        - {user}" for user in users)
    (workspace / "cutover.yaml").write_text(f"""\
mailstores:
  source: {{kind: imap, url: "{url}{ports['LAB_SOURCE_PORT']}", password: env/LAB_PASSWORD}}
  target: {{kind: imap, url: "{url}{ports['LAB_TARGET_PORT']}", password: env/LAB_PASSWORD}}
inventory:
  sources:
    lab:
      kind: mailstore
      store: source
      sample: 0
      accounts:{accounts}
""")
    step = """\
  - id: {id}
    kind: mailbox.sync
    {requires}for_each: {{type: mailbox}}
    params: {{source: source, target: target, jobs: 4}}
"""
    (workspace / "plans" / "first.yaml").write_text(
        "name: first\nsteps:\n  - {id: inventory, kind: inventory.collect, "
        "params: {source: lab}}\n" + step.format(id="copy", requires="requires: [inventory]\n    "))
    (workspace / "plans" / "again.yaml").write_text(
        "name: again\nsteps:\n" + step.format(id="final-sync", requires=""))
    env = dict(os.environ, PYTHONPATH=str(ROOT), LAB_PASSWORD=PASSWORD,
               CUTOVER_LOCK_DIR=str(lab / "locks"))
    command = [sys.executable, "-m", "cutover", "--workspace", str(workspace), "run"]
    first = subprocess.run([*command, "plans/first.yaml", "--yes"], env=env,
                           capture_output=True, text=True)
    if first.returncode:
        return f"plan step: the first copy failed: {first.stderr.strip()}"
    start = time.perf_counter()
    again = subprocess.run([*command, "plans/again.yaml", "--yes"], env=env,
                           capture_output=True, text=True)
    wall = time.perf_counter() - start
    if again.returncode:
        return f"plan step: failed: {again.stderr.strip()}"
    return (f"plan step over {len(users)} up-to-date mailboxes (`cutover run`, one process): "
            f"{wall:.2f} s")


def medians(paths: list[Path]) -> dict[str, dict[str, float]]:
    runs = [run for path in paths for run in json.loads(path.read_text())]
    result = {}
    for kind in ("full", "noop"):
        chosen = [r for r in runs if r["kind"] == kind]
        if chosen:
            result[kind] = {key: statistics.median(r[key] for r in chosen)
                            for key in ("wall_s", "peak_rss_mb", "cpu_s", "server_cpu_s")}
            result[kind]["verified"] = all(r.get("verified", True) for r in chosen
                                           if "verified" in r)
            result[kind]["n"] = len(chosen)
    return result


def report(work: Path, names: list[str]) -> str:
    figures = {}
    for name in names:
        paths = sorted(work.glob(f"round-*/{name}.json"))
        if paths:
            figures[name] = medians(paths)
    lines = [f"{'tool':10s} {'full s':>8s} {'no-op s':>8s} {'RSS MB':>8s} {'cpu s':>7s} "
             f"{'srv cpu':>8s} {'verified':>9s}"]
    for name, fig in figures.items():
        full, noop = fig.get("full", {}), fig.get("noop", {})
        lines.append(f"{name:10s} {full.get('wall_s', float('nan')):8.2f} "
                     f"{noop.get('wall_s', float('nan')):8.2f} "
                     f"{full.get('peak_rss_mb', float('nan')):8.1f} "
                     f"{full.get('cpu_s', float('nan')):7.2f} "
                     f"{full.get('server_cpu_s', float('nan')):8.2f} "
                     f"{str(full.get('verified', '?')):>9s}")
    for mine in ("cutover", "baseline"):
        ours = figures.get(mine)
        if not ours or "full" not in ours:
            continue
        for name, fig in figures.items():
            if name in ("cutover", "baseline") or "full" not in fig:
                continue
            lines.append(
                f"{mine}/{name}: full copy {ours['full']['wall_s'] / fig['full']['wall_s']:.2f}x"
                f", no-op {ours['noop']['wall_s'] / fig['noop']['wall_s']:.2f}x"
                f", peak RSS {ours['full']['peak_rss_mb'] / fig['full']['peak_rss_mb']:.2f}x")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
