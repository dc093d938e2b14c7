"""tools/dominance.py on small synthetic tables: dominance (ties included), directions, worst
values, missing data and malformed input."""
import json
import lzma
import os
import subprocess
import sys
import tempfile
import unittest

TOOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "dominance.py")


def rec(i, flags=None, **values):
    return dict({"arch": "a%d" % i, "index": i, "flags": flags or {}}, **values)


class Dominance(unittest.TestCase):
    def setUp(self):
        self._dir = tempfile.TemporaryDirectory()
        self.dir = self._dir.name

    def tearDown(self):
        self._dir.cleanup()

    def write(self, records, accs, name="s.jsonl", lines=None):
        scores, table = os.path.join(self.dir, name), os.path.join(self.dir, "t.csv")
        text = "".join(lines if lines is not None else (json.dumps(r) + "\n" for r in records))
        if name.endswith(".xz"):
            with lzma.open(scores, "wt") as fh:
                fh.write(text)
        else:
            with open(scores, "w") as fh:
                fh.write(text)
        with open(table, "w") as fh:
            fh.write("arch_index,arch_str,cifar10_test,cifar10_valid\n")
            for i, a in enumerate(accs):
                fh.write("%d,a%d,%s,%s\n" % (i, i, a, a - 3))
        return scores, table

    def run_tool(self, records, accs, *args, **kw):
        scores, table = self.write(records, accs, **kw)
        return subprocess.run([sys.executable, TOOL, "--scores", scores, "--table", table, "--threshold", "94"]
                              + list(args), capture_output=True, text=True)

    def test_one_architecture_better_in_every_proxy_than_all_good_ones(self):
        # 2 is below the threshold yet better than 0 and 1 in a and in ntk_fast (lower is better).
        recs = [rec(0, a=1.0, ntk_fast=5.0, b=9.0), rec(1, a=2.0, ntk_fast=4.0, b=8.0),
                rec(2, a=3.0, ntk_fast=1.0, b=1.0), rec(3, a=0.5, ntk_fast=9.0, b=0.0)]
        accs = [95.0, 94.5, 90.0, 80.0]
        r = self.run_tool(recs, accs, "--proxies", "a,ntk_fast")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("2 architectures at or above 94", r.stdout)
        self.assertIn("no fitness that grows with every proxy ranks one of them first", r.stdout)
        self.assertIn("dominated, all of them, by 1 architecture(s): 2 (90.00)", r.stdout)
        # b ranks both good ones above 2: it breaks the dominance, so the set with b has none.
        self.assertRegex(r.stdout, r"\n +b +2 +\(not in the set\)")
        r = self.run_tool(recs, accs, "--proxies", "a,ntk_fast,b")
        self.assertIn("2 of them dominated by none below 94", r.stdout)
        self.assertIn("no single architecture below 94 dominates all of them", r.stdout)

    def test_ntk_fast_counts_lower_as_better_and_its_nonpositive_values_as_worst(self):
        recs = [rec(0, a=1.0, ntk_fast=1.0), rec(1, a=2.0, ntk_fast=5.0)]
        r = self.run_tool(recs, [95.0, 90.0], "--proxies", "a,ntk_fast")
        self.assertIn("1 of them dominated by none", r.stdout)
        r = self.run_tool(recs, [95.0, 90.0], "--proxies", "a")
        self.assertIn("by 1 architecture(s): 1 (90.00)", r.stdout)
        # A condition number <= 0 is what the fitness cannot take the log of: worst, not best.
        recs = [rec(0, a=1.0, ntk_fast=1.0), rec(1, a=2.0, ntk_fast=-5.0)]
        r = self.run_tool(recs, [95.0, 90.0], "--proxies", "a,ntk_fast")
        self.assertIn("1 of them dominated by none", r.stdout)

    def test_a_tie_in_one_proxy_still_dominates(self):
        r = self.run_tool([rec(0, a=1.0, b=5.0), rec(1, a=2.0, b=5.0)], [95.0, 90.0], "--proxies", "a,b")
        self.assertIn("no fitness that grows with every proxy ranks one of them first", r.stdout)
        self.assertIn("by 1 architecture(s): 1 (90.00)", r.stdout)
        # Equal in everything: neither is ranked above the other by every fitness.
        r = self.run_tool([rec(0, a=1.0, b=5.0), rec(1, a=1.0, b=5.0)], [95.0, 90.0], "--proxies", "a,b")
        self.assertIn("1 of them dominated by none", r.stdout)

    def test_each_good_one_dominated_by_a_different_one_is_still_never_first(self):
        recs = [rec(0, a=1.0, b=5.0), rec(1, a=5.0, b=1.0), rec(2, a=2.0, b=6.0), rec(3, a=6.0, b=2.0)]
        r = self.run_tool(recs, [95.0, 94.5, 90.0, 90.0], "--proxies", "a,b")
        self.assertIn("no fitness that grows with every proxy ranks one of them first", r.stdout)
        self.assertIn("no single architecture below 94 dominates all of them", r.stdout)

    def test_flagged_null_and_absent_values_are_worst(self):
        recs = [rec(0, a=1.0, b=1.0), rec(1, {"a": "degenerate"}, a=None, b=9.0), rec(2, {"a": "nonfinite"}, a=7.0, b=9.0)]
        r = self.run_tool(recs, [95.0, 90.0, 90.0], "--proxies", "a,b")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("1 of them dominated by none", r.stdout)
        # A dominator flagged in a proxy outside the set: that proxy breaks the dominance.
        recs = [rec(0, a=1.0, b=1.0), rec(1, {"b": "nonfinite"}, a=2.0, b=None)]
        r = self.run_tool(recs, [95.0, 90.0], "--proxies", "a")
        self.assertRegex(r.stdout, r"\n +b +1 +\(not in the set\)")
        # A record without the key: worst, with a warning.
        r = self.run_tool([rec(0, a=1.0), rec(1, a=2.0, b=3.0)], [95.0, 90.0], "--proxies", "a,b")
        self.assertIn("1 record(s) have no b", r.stderr)
        self.assertIn("by 1 architecture(s): 1", r.stdout)

    def test_reads_xz_and_warns_about_good_architectures_without_a_record(self):
        r = self.run_tool([rec(0, a=1.0), rec(1, a=2.0)], [95.0, 90.0, 96.0], "--proxies", "a", name="s.jsonl.xz")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("1 architecture(s) of the table at or above 94 have no record", r.stderr)
        self.assertIn("1 architectures at or above 94", r.stdout)

    def test_default_sets_are_without_then_with_ni(self):
        r = self.run_tool([rec(0, a=1.0, ni=1.0), rec(1, a=2.0, ni=0.0)], [95.0, 90.0])
        self.assertIn("proxies: a\n", r.stdout)
        self.assertIn("proxies: a,ni\n", r.stdout)
        r = self.run_tool([rec(0, a=1.0), rec(1, a=2.0)], [95.0, 90.0])
        self.assertEqual(r.stdout.count("proxies:"), 1)

    def test_bad_input_exits_2_with_a_message_and_no_traceback(self):
        good = [json.dumps(rec(0, a=1.0)) + "\n"]
        cases = [
            (["[1, 2]\n"], "s.jsonl", "not a score record"),
            (['{"index": 0, "flags": null, "a": 1}\n'], "s.jsonl", "not a score record"),
            (['{"index": [0], "a": 1}\n'], "s.jsonl", "no integer index"),
            (['{"index": 0, "a": 1}\n', '{"index": 0, "a": 2}\n'], "s.jsonl", "appears twice"),
            (["{not json\n"], "s.jsonl", "not JSON"),
        ]
        for lines, name, message in cases:
            r = self.run_tool(None, [95.0], name=name, lines=lines)
            self.assertEqual(r.returncode, 2, lines)
            self.assertIn(message, r.stderr)
            self.assertNotIn("Traceback", r.stderr)
        scores, table = self.write(None, [95.0], name="s.jsonl.xz",
                                   lines=[json.dumps(rec(i, a=1.0)) + "\n" for i in range(2000)])
        with open(scores, "rb") as fh:
            data = fh.read()
        with open(scores, "wb") as fh:
            fh.write(data[: len(data) // 2])
        for args, message in (([scores, "--table", table], "cannot read"),
                              (["/nonexistent.jsonl"], "cannot read"),
                              ([scores.replace(".xz", ""), "--table", table, "--threshold", "nan"], "finite"),
                              ([scores.replace(".xz", ""), "--table", table, "--proxies", "a,bogus"], "unknown: bogus"),
                              ([scores.replace(".xz", ""), "--table", table, "--proxies", "a,a"], "twice")):
            if args[0] == scores.replace(".xz", ""):
                self.write(None, [95.0], lines=good)
            r = subprocess.run([sys.executable, TOOL, "--scores"] + args, capture_output=True, text=True)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn(message, r.stderr)
            self.assertNotIn("Traceback", r.stderr)


if __name__ == "__main__":
    unittest.main()
