"""MPI scale-out of hybridnas on the CPU backend (docs/scale-out.md), with OpenMPI's mpirun.

Each test compares an MPI job with the single-process run of the same command: the records, the
statistics and the search answers must be the same (a member's scores never depend on the
population or the rank that computed it). Run by ctest (tests/CMakeLists.txt) with
HYBRIDNAS_BIN, HYBRIDNAS_DATA_DIR and MPIEXEC set; stdlib only.
"""
import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

BIN = os.environ["HYBRIDNAS_BIN"]
DATA = os.path.join(os.environ["HYBRIDNAS_DATA_DIR"], "cifar10", "cifar10_sample.bin")
MPIRUN = [os.environ.get("MPIEXEC", "mpirun"), "--oversubscribe", "--allow-run-as-root"]
# Small settings, so that each job takes seconds on two cores.
SCORING = ["--data", DATA, "--image-offset", "1000", "--proxies", "naswot,ni", "--batch", "8", "--threads", "1"]


def run(args, np=None, check=True, **kw):
    cmd = (MPIRUN + ["-np", str(np)] if np else []) + [BIN] + args
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stderr[-3000:]}")
    return p


def records(path):
    out = []
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            r.pop("seconds", None)  # wall times differ from run to run
            out.append(r)
    return out


def search_runs(text):
    runs = json.loads(text)["runs"]
    for r in runs:
        for k in ("seconds", "resumed", "network_evaluations"):
            r.pop(k, None)
    return runs


class MpiScaleOut(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.archs = os.path.join(self.dir, "archs.txt")
        with open(self.archs, "w") as f:
            f.write("\n".join(str(i) for i in range(0, 4000, 50)) + "\n")  # 80 architectures

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def test_score_equals_one_process(self):
        run(["score", "--archs", self.archs, "--out", self.path("one.jsonl"), "-q"] + SCORING)
        one = records(self.path("one.jsonl"))
        self.assertEqual(len(one), 80)
        for np in (2, 3):
            p = run(["score", "--archs", self.archs, "--out", self.path(f"np{np}.jsonl")] + SCORING, np=np)
            self.assertEqual(records(self.path(f"np{np}.jsonl")), one, f"-np {np}")
            # Every rank took part (the closing line counts what each scored).
            line = [l for l in p.stderr.splitlines() if l.startswith("[mpi]")][0]
            counts = [int(x) for x in line.split("scored")[1].split("architectures")[0].split(",")]
            self.assertEqual(len(counts), np)
            self.assertEqual(sum(counts), 80)
            self.assertTrue(all(c > 0 for c in counts), line)

    def test_the_size_space_across_ranks_equals_one_process(self):
        # Worker ranks build the scorer of rank 0's space (--space nats-sss): the same records and
        # search answers as one process.
        sss = ["--space", "nats-sss"] + SCORING
        archs = ["--arch", "16:32:48:24:56", "--index", "0", "--index", "32767", "--index", "5000", "--index", "777"]
        run(["score", "--out", self.path("one.jsonl"), "-q"] + archs + sss)
        run(["score", "--out", self.path("two.jsonl"), "-q"] + archs + sss, np=2)
        self.assertEqual(records(self.path("two.jsonl")), records(self.path("one.jsonl")))
        args = ["search", "--budget", "40", "--population", "10", "--fitness", "rank", "-q"] + sss
        self.assertEqual(search_runs(run(args, np=2).stdout), search_runs(run(args).stdout))

    def test_score_cache_is_written_by_rank_0(self):
        cache = self.path("cache.sqlite")
        run(["score", "--archs", self.archs, "--cache", cache, "--out", self.path("a.jsonl"), "-q"] + SCORING, np=2)
        p = run(["score", "--archs", self.archs, "--cache", cache, "--out", self.path("b.jsonl")] + SCORING, np=2)
        self.assertIn("80 served, 0 scored", p.stderr)
        self.assertEqual(records(self.path("a.jsonl")), records(self.path("b.jsonl")))

    def test_stats_equal_one_process(self):
        args = ["stats", "--reference-sample", "30", "--search-seed", "3"] + SCORING
        one = json.loads(run(args + ["-q"]).stdout)
        two = json.loads(run(args, np=2).stdout)
        self.assertEqual(one, two)

    def test_search_scored_across_ranks_equals_one_process(self):
        args = ["search", "--budget", "150", "--population", "20", "--generations", "50", "-q"] + SCORING
        self.assertEqual(search_runs(run(args, np=2).stdout), search_runs(run(args).stdout))

    def ga_args(self):
        return ["search", "--budget", "300", "--population", "20", "--generations", "1000", "--stall", "1000",
                "-q"] + SCORING

    def island_args(self):
        return self.ga_args() + ["--migration-interval", "3", "--migrants", "3"]

    def test_islands_are_deterministic_and_beat_one_island(self):
        args = self.island_args()
        a = search_runs(run(args + ["--islands"], np=3).stdout)[0]
        b = search_runs(run(args + ["--islands"], np=3).stdout)[0]
        self.assertEqual(a, b)
        self.assertEqual(a["islands"], 3)
        self.assertGreater(a["migrations"], 0)
        self.assertEqual(len(a["island_evaluations"]), 3)
        self.assertEqual(a["island_evaluations"][0] + a["island_evaluations"][1] + a["island_evaluations"][2], 300)
        # One GA at the same total budget, same seed and reference sample: its fitness means the
        # same, and on this case it converges (stalls) below what the islands find.
        one = search_runs(run(self.ga_args()).stdout)[0]
        self.assertGreaterEqual(a["fitness"], one["fitness"])
        # Other island counts give other (still deterministic) searches.
        c = search_runs(run(args + ["--islands"], np=2).stdout)[0]
        self.assertEqual(c["islands"], 2)

    def test_islands_that_stop_early_say_so(self):
        # Islands that end on --generations before their shares are spent: every island keeps
        # taking part until all are done, and the job reports why it ended early.
        p = run(["search", "--islands", "--budget", "150", "--population", "20", "--generations", "2"] + SCORING, np=2)
        r = json.loads(p.stdout)["runs"][0]
        self.assertEqual(r["stopped"], "generations")
        self.assertIn("stopped_early", r)
        self.assertLess(sum(r["island_evaluations"]), 150)
        self.assertIn("ended before its budget", p.stderr)

    def test_rank_0_commands_do_not_wait_for_workers(self):
        # bench runs on rank 0 alone; the other ranks leave at once (no scoring is sent to them).
        p = run(["bench", "--once", "--proxies", "naswot", "--backend", "cpu", "--threads", "1", "--batch", "8"],
                np=2)
        self.assertIn("runs on rank 0 alone", p.stderr)
        self.assertIn("naswot", p.stdout)

    def test_usage_errors_are_printed_once(self):
        p = run(["search", "--islands", "--migrants", "30", "--population", "20"] + SCORING, np=3, check=False)
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stderr.count("--migrants must be at most --population"), 1, p.stderr)

    def test_islands_share_a_cache(self):
        # Every island opens the cache (one after another: SQLite refuses a database another
        # process is setting up); network evaluations are every island's.
        cache = self.path("c.sqlite")
        args = ["search", "--islands", "--budget", "200", "--population", "20", "--cache", cache] + SCORING
        first = json.loads(run(args, np=3).stdout)["runs"][0]
        self.assertGreater(first["network_evaluations"], sum(first["island_evaluations"]) * 0.9)
        again = json.loads(run(args, np=3).stdout)["runs"][0]
        self.assertEqual(again["network_evaluations"], 0)
        self.assertEqual(again["arch"], first["arch"])

    def test_islands_refuse_other_strategies(self):
        p = run(["search", "--islands", "--strategy", "rea", "--budget", "100"] + SCORING, np=2, check=False)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("--islands runs the GA", p.stderr)

    def kill_rank_when(self, args, np, ready):
        """Starts an MPI job, SIGKILLs its newest rank once ready() holds, returns mpirun's exit code."""
        job = subprocess.Popen(MPIRUN + ["-np", str(np), BIN] + args, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 300
        while not ready() and time.time() < deadline and job.poll() is None:
            time.sleep(0.05)
        self.assertIsNone(job.poll(), "the job ended before a rank could be killed")
        ranks = subprocess.run(["pgrep", "-P", str(job.pid)], capture_output=True, text=True).stdout.split()
        self.assertEqual(len(ranks), np)
        os.kill(int(ranks[-1]), signal.SIGKILL)
        _, err = job.communicate(timeout=120)
        self.assertNotEqual(job.returncode, 0)
        return err

    def test_score_resumes_after_a_killed_rank(self):
        run(["score", "--archs", self.archs, "--out", self.path("ref.jsonl"), "-q"] + SCORING)
        out = self.path("k.jsonl")
        args = ["score", "--archs", self.archs, "--out", out, "-q"] + SCORING
        self.kill_rank_when(args, 2, lambda: os.path.exists(out) and os.path.getsize(out) > 0)
        written = len(records(out)) if os.path.getsize(out) else 0
        self.assertLess(written, 80)
        run(["score", "--archs", self.archs, "--out", out, "--resume"] + SCORING, np=2)
        key = lambda r: r["index"]
        self.assertEqual(sorted(records(out), key=key), sorted(records(self.path("ref.jsonl")), key=key))

    def test_islands_resume_after_a_killed_rank(self):
        args = self.island_args() + ["--islands"]
        ref = search_runs(run(args, np=3).stdout)[0]
        ck = self.path("ck.json")
        args_ck = args + ["--checkpoint", ck]
        self.kill_rank_when(args_ck, 3, lambda: all(os.path.exists(f"{ck}.island{i}.prev") for i in range(3)))
        text = run(args_ck, np=3).stdout
        self.assertTrue(json.loads(text)["runs"][0]["resumed"])
        self.assertEqual(search_runs(text)[0], ref)
        # Run again once finished: nothing is scored, and the answer stands.
        again = json.loads(run(args_ck, np=3).stdout)["runs"][0]
        self.assertEqual(again["network_evaluations"], 0)
        self.assertEqual(again["arch"], ref["arch"])
        # A damaged checkpoint is refused (as the single GA refuses one), not passed over.
        with open(f"{ck}.island1", "w") as f:
            f.write('{"broken')
        p = run(args_ck, np=3, check=False)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertEqual(p.stderr.count("is not a usable checkpoint"), 1, p.stderr)  # island 0 reports it
        self.assertIn("island1", p.stderr)
        self.assertNotIn("MPI_ABORT", p.stderr)  # the islands ended together


if __name__ == "__main__":
    unittest.main()
