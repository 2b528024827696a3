"""Print SymPy expressions as Numba-friendly Python: the cell's functions as calls of
`cellspec.fastmath`, numbers in the kernel's own float type, integer powers kept as powers."""

from __future__ import annotations

import sympy
from sympy.printing import precedence
from sympy.printing.pycode import PythonCodePrinter

from ..ops import KERNEL_FUNCTION


class NumbaPrinter(PythonCodePrinter):
    """`doprint` spells an expression for a Numba kernel; `functions` records the
    `cellspec.fastmath` functions it called, so the module imports exactly those.

    With `typed` (the default), a number is written `_F(0.5)`, where the kernel binds `_F` to its
    arrays' float type: a bare literal is float64 to Numba and would turn a float32 kernel's
    arithmetic into float64."""

    def __init__(self, typed: bool = True):
        super().__init__({"strict": True, "fully_qualified_modules": True})
        self.functions: set[str] = set()
        self.typed = typed

    def _number(self, text: str) -> str:
        return f"_F({text})" if self.typed else text

    def _print_Function(self, expr):
        name = KERNEL_FUNCTION.get(type(expr))
        if name is None:
            return super()._print_Function(expr)
        self.functions.add(name)
        return f"{name}({', '.join(self._print(a) for a in expr.args)})"

    _print_tanh = _print_exp = _print_log = _print_sign = _print_Function

    def _print_Abs(self, expr):
        return f"abs({self._print(expr.args[0])})"

    def _print_Integer(self, expr):
        return self._number(f"{int(expr)}.0")

    def _print_Rational(self, expr):
        return self._number(repr(float(expr)))

    def _print_Float(self, expr):
        return self._number(repr(float(expr)))

    def _print_Half(self, expr):
        return self._number("0.5")

    def _print_One(self, expr):
        return self._number("1.0")

    def _print_NegativeOne(self, expr):
        return self._number("-1.0")

    def _print_Zero(self, expr):
        return self._number("0.0")

    def _print_Pow(self, expr, rational=False):
        # Integer powers stay `x**2`: Numba lowers a constant integer exponent to multiplications,
        # and SymPy's precedence rules keep `y/x**2` correct, which a spelled-out `x*x` would not.
        base, exp = expr.args
        if exp == sympy.S.Half:
            return f"math.sqrt({self._print(base)})"
        if exp == -sympy.S.Half:
            return f"{self._number('1.0')}/math.sqrt({self._print(base)})"
        if exp.is_Integer:
            b = self.parenthesize(base, precedence.PRECEDENCE["Pow"], strict=True)
            if exp > 0:
                return f"{b}**{int(exp)}"
            one = self._number("1.0")
            return f"{one}/{b}" if exp == -1 else f"{one}/{b}**{-int(exp)}"
        return super()._print_Pow(expr, rational=rational)


def print_expr(expr: sympy.Expr, printer: NumbaPrinter | None = None) -> str:
    return (printer or NumbaPrinter()).doprint(expr)


class IndexPrinter(PythonCodePrinter):
    """Print formulas of unit indices and dims (constants, masks) as NumPy code over index arrays:
    `i` is `_i`, `j` is `_j`, a dim `hidden` is `_n_hidden`."""

    def __init__(self):
        super().__init__({"strict": True, "fully_qualified_modules": True})

    def _print_Symbol(self, expr):
        return f"_{expr.name}" if expr.name in ("i", "j") else f"_n_{expr.name}"

    def _print_Integer(self, expr):
        return str(int(expr))

    def _print_Rational(self, expr):
        return repr(float(expr))

    def _print_Float(self, expr):
        return repr(float(expr))

    def _print_floor(self, expr):
        return f"np.floor({self._print(expr.args[0])})"

    def _print_Mod(self, expr):
        return f"np.mod({self._print(expr.args[0])}, {self._print(expr.args[1])})"

    def _print_Min(self, expr):
        return self._fold("np.minimum", expr.args)

    def _print_Max(self, expr):
        return self._fold("np.maximum", expr.args)

    def _fold(self, fn: str, args) -> str:
        out = self._print(args[0])
        for a in args[1:]:
            out = f"{fn}({out}, {self._print(a)})"
        return out

    def _print_And(self, expr):
        return "(" + " & ".join(self._print(a) for a in expr.args) + ")"

    def _print_Or(self, expr):
        return "(" + " | ".join(self._print(a) for a in expr.args) + ")"
