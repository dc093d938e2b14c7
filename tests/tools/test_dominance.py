"""tools/dominance.py on small synthetic tables: dominators, directions, flags, errors."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

TOOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "dominance.py")


class Dominance(unittest.TestCase):
    def run_tool(self, records, accs, *args):
        with tempfile.TemporaryDirectory() as d:
            scores, table = os.path.join(d, "s.jsonl"), os.path.join(d, "t.csv")
            with open(scores, "w") as fh:
                for r in records:
                    fh.write(json.dumps(r) + "\n")
            with open(table, "w") as fh:
                fh.write("arch_index,arch_str,cifar10_test,cifar10_valid\n")
                for i, a in enumerate(accs):
                    fh.write("%d,a%d,%s,%s\n" % (i, i, a, a - 3))
            return subprocess.run([sys.executable, TOOL, "--scores", scores, "--table", table] + list(args),
                                  capture_output=True, text=True)

    @staticmethod
    def rec(i, flags=None, **values):
        return dict({"arch": "a%d" % i, "index": i, "flags": flags or {}}, **values)

    def test_an_architecture_better_in_every_proxy_than_all_good_ones_is_named(self):
        # 2 is below the threshold yet better than 0 and 1 in a and in ntk_fast (lower is better).
        recs = [self.rec(0, a=1.0, ntk_fast=5.0, b=9.0), self.rec(1, a=2.0, ntk_fast=4.0, b=8.0),
                self.rec(2, a=3.0, ntk_fast=1.0, b=1.0), self.rec(3, a=0.5, ntk_fast=9.0, b=0.0)]
        r = self.run_tool(recs, [95.0, 94.5, 90.0, 80.0], "--threshold", "94", "--proxies", "a,ntk_fast")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("2 architectures at or above 94.00", r.stdout)
        self.assertIn("dominated, in every proxy, by 1 architecture(s): 2 (90.00)", r.stdout)
        # b ranks both good ones above 2: it breaks the dominance, so the set with b has none.
        self.assertRegex(r.stdout, r"\n +b +2 +\(not in the set\)")
        r = self.run_tool(recs, [95.0, 94.5, 90.0, 80.0], "--threshold", "94", "--proxies", "a,ntk_fast,b")
        self.assertIn("no architecture dominates all of them", r.stdout)

    def test_ntk_fast_counts_lower_as_better(self):
        recs = [self.rec(0, a=1.0, ntk_fast=1.0), self.rec(1, a=2.0, ntk_fast=5.0)]
        r = self.run_tool(recs, [95.0, 90.0], "--threshold", "94", "--proxies", "a,ntk_fast")
        self.assertIn("no architecture dominates", r.stdout)
        r = self.run_tool(recs, [95.0, 90.0], "--threshold", "94", "--proxies", "a")
        self.assertIn("by 1 architecture(s): 1 (90.00)", r.stdout)

    def test_flagged_and_missing_values_never_dominate(self):
        recs = [self.rec(0, a=1.0), self.rec(1, {"a": "degenerate"}, a=None), self.rec(2, {"a": "nonfinite"}, a=7.0)]
        r = self.run_tool(recs, [95.0, 90.0, 90.0], "--threshold", "94", "--proxies", "a")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("no architecture dominates", r.stdout)

    def test_bad_input_exits_2_with_a_message(self):
        r = self.run_tool([self.rec(0, a=1.0)], [95.0], "--proxies", "a,bogus")
        self.assertEqual(r.returncode, 2)
        self.assertIn("bogus not in", r.stderr)
        r = subprocess.run([sys.executable, TOOL, "--scores", "/nonexistent.jsonl"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("cannot read", r.stderr)
        self.assertNotIn("Traceback", r.stderr)


if __name__ == "__main__":
    unittest.main()
