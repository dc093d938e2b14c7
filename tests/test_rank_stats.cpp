// Rank statistics against hand-computed cases, ties included, and against the O(n^2) definition.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "engine/rank_stats.hpp"

using namespace hn::engine;

TEST(RankStats, AverageRanksShareTies) {
  EXPECT_EQ(average_ranks({10, 20, 20, 5}), (std::vector<double>{2, 3.5, 3.5, 1}));
}

TEST(RankStats, HandComputedCasesWithTies) {
  // Pairs: 4 concordant, 0 discordant, one tied in x, one tied in y: 4 / sqrt(5 * 5).
  EXPECT_DOUBLE_EQ(kendall_tau_b({1, 2, 2, 3}, {1, 3, 2, 3}), 0.8);
  // Ranks x (1, 2.5, 2.5, 4), y (1, 3.5, 2, 3.5): 3.75 / 4.5.
  EXPECT_DOUBLE_EQ(spearman_rho({1, 2, 2, 3}, {1, 3, 2, 3}), 3.75 / 4.5);
  EXPECT_DOUBLE_EQ(kendall_tau_b({1, 2, 3}, {3, 2, 1}), -1.0);
  EXPECT_DOUBLE_EQ(spearman_rho({1, 2, 3}, {3, 2, 1}), -1.0);
  EXPECT_TRUE(std::isnan(kendall_tau_b({1, 1, 1}, {1, 2, 3})));  // constant variable
}

TEST(RankStats, KendallMatchesTheQuadraticDefinition) {
  std::mt19937 g(1);
  std::uniform_int_distribution<int> d(0, 6);  // many ties
  for (int trial = 0; trial < 20; ++trial) {
    const int n = 5 + trial * 7;
    std::vector<double> x(n), y(n);
    for (int i = 0; i < n; ++i) {
      x[i] = d(g);
      y[i] = d(g) + 0.5 * x[i];
    }
    double s = 0, tx = 0, ty = 0, n0 = n * (n - 1) / 2.0;
    for (int i = 0; i < n; ++i)
      for (int j = i + 1; j < n; ++j) {
        const double a = (x[i] > x[j]) - (x[i] < x[j]), b = (y[i] > y[j]) - (y[i] < y[j]);
        s += a * b;
        tx += a == 0;
        ty += b == 0;
      }
    EXPECT_NEAR(kendall_tau_b(x, y), s / std::sqrt((n0 - tx) * (n0 - ty)), 1e-12);
  }
}
