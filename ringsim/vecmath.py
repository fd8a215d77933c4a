"""Branch-free elementary functions and counter-based random numbers that numba loops can vectorise.

LLVM vectorises a numba loop only if its body has no calls into libm and no checked division, so the
fast-mode kernel (:mod:`ringsim.fast_generation`) uses these inline versions in loops compiled with
``error_model="numpy"`` (importing this module also raises LLVM's budget of run-time overlap checks
between the arrays of a loop, which a loop writing many arrays needs to be vectorised):

- :func:`log` and :func:`exp`: fdlibm's reductions and kernels, within 1 ulp of libm for positive
  normal arguments (``log``) and for −708 ≤ x ≤ 709 (``exp``);
- :func:`atan`: fdlibm's reduction and kernel, for any x;
- :func:`sincos_reduced`: Cody–Waite reduction by π/2 and fdlibm's kernels, exact to a few ulp for
  |x| < 10⁶ (callers keep their arguments below);
- :func:`uniform`: the SplitMix64 walk as a counter-based generator. Draw ``n`` of the stream
  (``key``, ``stride``) is mix(key + n·stride), a pure function of ``n``: a loop over draws has no
  carried state and gives the same numbers in any order, on any thread;
- :func:`trailing_zeros`: LLVM's count of trailing zero bits.
"""

from __future__ import annotations

import math

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

# LLVM vectorises a loop over several arrays after checking at run time that they do not overlap; the
# default budget of such checks is too small for the fast-mode decay loop, which writes 16 arrays
llvm.set_option("", "--vectorize-memory-check-threshold=1024")

_LG1, _LG2, _LG3, _LG4 = 6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01, 2.222219843214978396e-01
_LG5, _LG6, _LG7 = 1.818357216161805012e-01, 1.531383769920937332e-01, 1.479819860511658591e-01
_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
_P1, _P2, _P3, _P4, _P5 = 1.66666666666666019037e-01, -2.77777777770155933842e-03, 6.61375632143793436117e-05, -1.65339022054652515390e-06, 4.13813679705723846039e-08
_AT = (
    3.33333333333329318027e-01,
    -1.99999999998764832476e-01,
    1.42857142725034663711e-01,
    -1.11111104054623557880e-01,
    9.09088713343650656196e-02,
    -7.69187620504482999495e-02,
    6.66107313738753120669e-02,
    -5.83357013379057348645e-02,
    4.97687799461593236017e-02,
    -3.65315727442169155270e-02,
    1.62858201153657823623e-02,
)
_ATAN_HI = (4.63647609000806093515e-01, 7.85398163397448278999e-01, 9.82793723247329054082e-01, 1.57079632679489655800e00)  # atan(½), atan(1), atan(3/2), π/2
_ATAN_LO = (2.26987774529616870924e-17, 3.06161699786838301793e-17, 1.39033110312309984516e-17, 6.12323399573676603587e-17)
_SQRT2 = 1.4142135623730951
_TWO_M52 = 1.0 / 4503599627370496.0


@intrinsic
def _float_bits(typingctx, x):
    """Return the IEEE-754 bits of a float64 as an int64."""
    if not isinstance(x, types.Float):
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _bits_float(typingctx, x):
    """Return the float64 whose IEEE-754 bits are the int64 ``x``."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@njit(cache=True, inline="always", error_model="numpy")
def log(x):
    """Return ln x for a positive normal float64 (no checks: zero, subnormals, inf and NaN are not handled)."""
    bits = _float_bits(x)
    k = (bits >> 52) - 1023
    m = _bits_float((bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000)  # x = m 2^k, 1 ≤ m < 2
    big = m > _SQRT2
    m = 0.5 * m if big else m
    dk = float(k + 1 if big else k)
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    r = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7))) + w * (_LG2 + w * (_LG4 + w * _LG6))
    hfsq = 0.5 * f * f
    return dk * _LN2_HI - ((hfsq - (s * (hfsq + r) + dk * _LN2_LO)) - f)


@njit(cache=True, inline="always", error_model="numpy")
def exp(x):
    """eˣ for finite x ≤ 709 (arguments below −708 are clamped to −708, where eˣ ≈ 3e−308; no overflow or NaN check)."""
    x = max(x, -708.0)
    k = math.floor(x * _INV_LN2 + 0.5)
    hi = x - k * _LN2_HI
    lo = k * _LN2_LO
    r = hi - lo
    t = r * r
    c = r - t * (_P1 + t * (_P2 + t * (_P3 + t * (_P4 + t * _P5))))
    y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    return y * _bits_float((np.int64(k) + 1023) << 52)


@njit(cache=True, inline="always", error_model="numpy")
def atan(x):
    """Return arctan x for any x (fdlibm's reduction to |x| < 7/16 and kernel, with selects instead of branches)."""
    a = abs(x)
    # reduced argument (p·a + q)/(r·a + t), or −1/a, and atan of the reduction point: fdlibm's five ranges
    r1, r2, r3, r4 = a >= 0.4375, a >= 0.6875, a >= 1.1875, a >= 2.4375
    p = 1.0 if r2 else (2.0 if r1 else 1.0)
    q = -1.5 if r3 else (-1.0 if r1 else 0.0)
    r = 1.5 if r3 else (1.0 if r1 else 0.0)
    t = 1.0 if r2 else (2.0 if r1 else 1.0)
    hi = _ATAN_HI[3] if r4 else (_ATAN_HI[2] if r3 else (_ATAN_HI[1] if r2 else (_ATAN_HI[0] if r1 else 0.0)))
    lo = _ATAN_LO[3] if r4 else (_ATAN_LO[2] if r3 else (_ATAN_LO[1] if r2 else (_ATAN_LO[0] if r1 else 0.0)))
    y = -1.0 / a if r4 else (p * a + q) / (r * a + t)
    z = y * y
    w = z * z
    s1 = z * (_AT[0] + w * (_AT[2] + w * (_AT[4] + w * (_AT[6] + w * (_AT[8] + w * _AT[10])))))
    s2 = w * (_AT[1] + w * (_AT[3] + w * (_AT[5] + w * (_AT[7] + w * _AT[9]))))
    result = hi - ((y * (s1 + s2) - lo) - y)
    return -result if x < 0.0 else result


@njit(cache=True, inline="always", error_model="numpy")
def sincos_reduced(x):
    """(sin x, cos x) for |x| < 10⁶: Cody–Waite reduction by π/2 and fdlibm kernels, branch-free."""
    k = math.floor(x * 0.6366197723675814 + 0.5)  # nearest multiple of π/2
    # π/2 in three 33-bit pieces (fdlibm pio2_1, pio2_2, pio2_3): k·piece is exact for |k| < 2²⁰
    r = ((x - k * 1.57079632673412561417e00) - k * 6.07710050630396597660e-11) - k * 2.02226624871116645580e-21
    z = r * r
    sin_r = r + r * z * (
        -1.66666666666666324348e-01
        + z * (8.33333333332248946124e-03 + z * (-1.98412698298579493134e-04 + z * (2.75573137070700676789e-06 + z * (-2.50507602534068634195e-08 + z * 1.58969099521155010221e-10))))
    )
    cos_r = (
        1.0
        - 0.5 * z
        + z
        * z
        * (
            4.16666666666666019037e-02
            + z * (-1.38888888888741095749e-03 + z * (2.48015872894767294178e-05 + z * (-2.75573143513906633035e-07 + z * (2.08757232129817482790e-09 + z * -1.13596475577881948265e-11))))
        )
    )
    q = np.int64(k) & 3  # quadrant: (s, c), (c, −s), (−s, −c), (−c, s)
    odd = q & 1
    a = cos_r if odd else sin_r
    b = sin_r if odd else cos_r
    return (1.0 - (q & 2)) * a, (1.0 - ((q + 1) & 2)) * b


@njit(cache=True, inline="always")
def _mix64(z):
    """SplitMix64's output function (Stafford's mix 13) of a uint64."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True, inline="always")
def unit_open(z):
    """Return the uint64 ``z`` as a double in the open interval (0, 1): (⌊z/2¹²⌋ + ½)·2⁻⁵², exact."""
    return (np.int64(z >> np.uint64(12)) + 0.5) * _TWO_M52


@njit(cache=True, inline="always")
def uniform(key, stride, n):
    """Draw ``n`` (int ≥ 0) of the SplitMix64 stream (``key``, odd ``stride``): a double in (0, 1)."""
    return unit_open(_mix64(key + np.uint64(n) * stride))


@intrinsic
def trailing_zeros(typingctx, x):
    """Return the number of trailing zero bits of an integer (its width for 0)."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 0))

    return x(x), codegen
