"""Print SymPy expressions as Numba-friendly Python: math functions, float literals, powers as
products, and the cell ops as calls of helpers the generated module defines."""

from __future__ import annotations

import sympy
from sympy.printing import precedence
from sympy.printing.pycode import PythonCodePrinter

from ..ops import HELPER_BY_CLASS


class NumbaPrinter(PythonCodePrinter):
    """`doprint` spells an expression for a Numba kernel; `helpers` records the cell-op helper
    functions it called, so the module defines exactly those."""

    def __init__(self):
        super().__init__({"strict": True, "fully_qualified_modules": True})
        self.helpers: set[str] = set()

    def _print_Function(self, expr):
        name = HELPER_BY_CLASS.get(type(expr))
        if name is None:
            return super()._print_Function(expr)
        self.helpers.add(name)
        return f"{name}({', '.join(self._print(a) for a in expr.args)})"

    def _print_Abs(self, expr):
        return f"abs({self._print(expr.args[0])})"

    def _print_sign(self, expr):
        self.helpers.add("sign")
        return f"sign({self._print(expr.args[0])})"

    def _print_Integer(self, expr):
        return f"{int(expr)}.0"

    def _print_Rational(self, expr):
        return repr(float(expr))

    def _print_Float(self, expr):
        return repr(float(expr))

    def _print_Half(self, expr):
        return "0.5"

    def _print_One(self, expr):
        return "1.0"

    def _print_NegativeOne(self, expr):
        return "-1.0"

    def _print_Zero(self, expr):
        return "0.0"

    def _print_Pow(self, expr, rational=False):
        # Integer powers stay `x**2`: Numba lowers a constant integer exponent to multiplications,
        # and SymPy's precedence rules keep `y/x**2` correct, which a spelled-out `x*x` would not.
        base, exp = expr.args
        if exp == sympy.S.Half:
            return f"math.sqrt({self._print(base)})"
        if exp == -sympy.S.Half:
            return f"1.0/math.sqrt({self._print(base)})"
        if exp.is_Integer:
            b = self.parenthesize(base, precedence.PRECEDENCE["Pow"], strict=True)
            if exp > 0:
                return f"{b}**{int(exp)}"
            return f"1.0/{b}" if exp == -1 else f"1.0/{b}**{-int(exp)}"
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
