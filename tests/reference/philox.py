"""Philox4x32-10 counter-based generator and the engine's random-tensor bank (SPEC section 2).

Independent numpy implementation used by the PyTorch reference. Every random number the engine
draws is a pure function of (seed, counter), counter = (element index, slot id, purpose id, repeat
index), so the reference can regenerate any tensor without replaying a stream.

Run as a script to check the known-answer vector.
"""

import numpy as np

M0 = np.uint64(0xD2511F53)
M1 = np.uint64(0xCD9E8D57)
W0 = 0x9E3779B9
W1 = 0xBB67AE85
MASK32 = np.uint64(0xFFFFFFFF)
SHIFT32 = np.uint64(32)

# Purpose ids (counter word 2).
PURPOSE_DEFAULT_INIT = 0
PURPOSE_ENTROPY_WEIGHTS = 1
PURPOSE_ENTROPY_SEED_WEIGHTS = 2
PURPOSE_GAUSSIAN_INPUT = 3
PURPOSE_NI_NOISE = 4
PURPOSE_ENTROPY_INPUT = 5
PURPOSE_ENTROPY_SEED_INPUT = 6
PURPOSE_KAIMING_WEIGHTS = 7   # AZ-NAS: conv / linear N(0,1) * sqrt(2 / fan_in), bias 0
PURPOSE_AZ_INPUT = 8          # AZ-NAS: N(0,1) images
PURPOSE_AZ_COTANGENT = 9      # AZ-NAS trainability: Rademacher cotangents, repeat = block


def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 on arrays of counters (broadcastable), scalar key. Returns 4 uint32 arrays.

    Words are held in uint64 so the 32x32->64 products are exact; everything is masked back to
    32 bits after each step.
    """
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint64) & MASK32 for c in (c0, c1, c2, c3))
    c0, c1, c2, c3 = np.broadcast_arrays(c0, c1, c2, c3)
    k0 = int(k0) & 0xFFFFFFFF
    k1 = int(k1) & 0xFFFFFFFF
    for _ in range(10):
        p0 = M0 * c0
        p1 = M1 * c2
        hi0, lo0 = p0 >> SHIFT32, p0 & MASK32
        hi1, lo1 = p1 >> SHIFT32, p1 & MASK32
        c0, c1, c2, c3 = (hi1 ^ c1 ^ np.uint64(k0), lo1, hi0 ^ c3 ^ np.uint64(k1), lo0)
        k0 = (k0 + W0) & 0xFFFFFFFF
        k1 = (k1 + W1) & 0xFFFFFFFF
    return tuple(c.astype(np.uint32) for c in (c0, c1, c2, c3))


def _words(seed, n, slot, purpose, repeat):
    seed = int(seed)
    idx = np.arange(n, dtype=np.uint64)
    return philox4x32_10(idx, slot, purpose, repeat, seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF)


def uniform01(w):
    """u = ((w >> 8) + 0.5) * 2^-24 in float64: strictly inside (0, 1), so log(u) is finite."""
    return ((w >> np.uint32(8)).astype(np.float64) + 0.5) * 2.0 ** -24


def uniform_tensor(seed, shape, slot, purpose, repeat, bound):
    """U(-bound, bound) as float32: computed in float64, rounded once."""
    n = int(np.prod(shape))
    w0 = _words(seed, n, slot, purpose, repeat)[0]
    b = np.float64(bound)
    return (b * (2.0 * uniform01(w0) - 1.0)).astype(np.float32).reshape(shape)


def normal_tensor(seed, shape, slot, purpose, repeat, scale=1.0):
    """scale * N(0,1) as float32 (Box-Muller on words 0 and 1 in float64, scaled, rounded once)."""
    n = int(np.prod(shape))
    w = _words(seed, n, slot, purpose, repeat)
    u0, u1 = uniform01(w[0]), uniform01(w[1])
    z = np.sqrt(-2.0 * np.log(u0)) * np.cos(2.0 * np.pi * u1)
    return (z * np.float64(scale)).astype(np.float32).reshape(shape)


# ---------------------------------------------------------------------------------------------
# Parameter slots (independent of the architecture, so all architectures share one weight bank).

SLOT_STEM = 0
SLOT_HEAD_W = 187
SLOT_HEAD_B = 188


def edge_slot(g, e, kind):
    """g = stage*5 + cell_in_stage (0..14), e = edge 0..5, kind 0 = conv1x1, 1 = conv3x3."""
    return 1 + ((g * 6 + e) * 2 + kind)


def reduction_slots(r):
    """(conv_a, conv_b, shortcut) slots of reduction block r (0: 16->32, 1: 32->64)."""
    return 181 + 3 * r, 182 + 3 * r, 183 + 3 * r


def conv_weight(seed, shape, slot, purpose, repeat=0):
    """A conv weight [Cout, Cin, k, k] under one of the three init schemes."""
    cout, cin, kh, kw = shape
    if purpose == PURPOSE_DEFAULT_INIT:
        return uniform_tensor(seed, shape, slot, purpose, 0, 1.0 / np.sqrt(np.float64(cin * kh * kw)))
    if purpose == PURPOSE_ENTROPY_WEIGHTS:
        return normal_tensor(seed, shape, slot, purpose, repeat, 1.0)
    if purpose == PURPOSE_ENTROPY_SEED_WEIGHTS:
        return normal_tensor(seed, shape, slot, purpose, 0, 1.0 / np.sqrt(np.float64(kh * kw * cout)))
    raise ValueError("purpose %d has no conv weights" % purpose)


def linear_params(seed, num_classes, purpose, in_features=64):
    """(weight [num_classes, 64], bias [num_classes]) as float32."""
    shape = (num_classes, in_features)
    if purpose == PURPOSE_DEFAULT_INIT:
        b = 1.0 / np.sqrt(np.float64(in_features))
        return (uniform_tensor(seed, shape, SLOT_HEAD_W, purpose, 0, b),
                uniform_tensor(seed, (num_classes,), SLOT_HEAD_B, purpose, 0, b))
    if purpose == PURPOSE_ENTROPY_SEED_WEIGHTS:
        return (normal_tensor(seed, shape, SLOT_HEAD_W, purpose, 0, 1.0 / np.sqrt(np.float64(num_classes))),
                np.zeros(num_classes, dtype=np.float32))
    raise ValueError("purpose %d has no linear parameters" % purpose)


def image_noise(seed, shape, purpose, repeat=0, scale=1.0):
    """Image-shaped draws (slot 0, element = flat NCHW index from image 0 of the batch)."""
    return normal_tensor(seed, shape, SLOT_STEM, purpose, repeat, scale)


def kaiming_conv_weight(seed, shape, slot):
    """Kaiming-normal (fan_in, ReLU gain) conv weight: N(0,1) * sqrt(2 / (cin k k)) as float32."""
    cout, cin, kh, kw = shape
    return normal_tensor(seed, shape, slot, PURPOSE_KAIMING_WEIGHTS, 0, np.sqrt(2.0 / np.float64(cin * kh * kw)))


def kaiming_linear_params(seed, num_classes, in_features=64):
    """(weight N(0,1) * sqrt(2 / in_features), bias 0) as float32 (purpose 7)."""
    w = normal_tensor(seed, (num_classes, in_features), SLOT_HEAD_W, PURPOSE_KAIMING_WEIGHTS, 0,
                      np.sqrt(2.0 / np.float64(in_features)))
    return w, np.zeros(num_classes, dtype=np.float32)


def entropy_linear_params(seed, num_classes, repeat, in_features=64):
    """(weight N(0,1), bias 0) as float32: the entropy / SWAP bank's head (purpose 1, repeat r)."""
    w = normal_tensor(seed, (num_classes, in_features), SLOT_HEAD_W, PURPOSE_ENTROPY_WEIGHTS, repeat, 1.0)
    return w, np.zeros(num_classes, dtype=np.float32)


def rademacher_tensor(seed, shape, slot, purpose, repeat):
    """+1 where word 0 of the draw for flat element i is odd, else -1 (float64)."""
    n = int(np.prod(shape))
    w0 = _words(seed, n, slot, purpose, repeat)[0]
    return np.where((w0 & np.uint32(1)) == 1, 1.0, -1.0).reshape(shape)


def _self_check():
    w = philox4x32_10(0, 0, 0, 0, 0, 0)
    got = tuple(int(x) for x in w)
    want = (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)
    ok = got == want
    print("%s philox4x32-10 known answer: %s" % ("PASS" if ok else "FAIL", " ".join("%08x" % x for x in got)))
    # The vectorised path must agree with the scalar one element by element.
    arr = philox4x32_10(np.arange(3, dtype=np.uint64), 7, 2, 1, 0x12345678, 0x9)
    sc = [philox4x32_10(i, 7, 2, 1, 0x12345678, 0x9) for i in range(3)]
    ok2 = all(int(arr[j][i]) == int(sc[i][j]) for i in range(3) for j in range(4))
    print("%s philox4x32-10 vector == scalar" % ("PASS" if ok2 else "FAIL"))
    return ok and ok2


if __name__ == "__main__":
    import sys
    sys.exit(0 if _self_check() else 1)
