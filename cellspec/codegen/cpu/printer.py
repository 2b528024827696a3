"""Print SymPy expressions as Numba-friendly Python: the cell's functions as calls of
`cellspec.fastmath`, numbers in the kernel's own float type, integer powers kept as powers."""

from __future__ import annotations

import sympy
from sympy.printing import precedence
from sympy.printing.pycode import PythonCodePrinter

from ...ops import FUNCTIONS


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
        row = FUNCTIONS.get(type(expr))
        if row is None:
            return super()._print_Function(expr)
        if not row.builtin:
            self.functions.add(row.kernel)
        return f"{row.kernel}({', '.join(self._print(a) for a in expr.args)})"

    def _print_ITE(self, expr):
        # SymPy's own rewrites an ITE into a Piecewise of conditions, which it cannot build when
        # the ITE nests (a where() inside a where() condition)
        c, a, b = (self._print(e) for e in expr.args)
        return f"(({a}) if ({c}) else ({b}))"

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


# SymPy's printer has methods of its own for some of the table's classes (tanh, exp, log, sign)
for _row in FUNCTIONS.values():
    setattr(NumbaPrinter, f"_print_{_row.cls.__name__}", NumbaPrinter._print_Function)


def print_expr(expr: sympy.Expr, printer: NumbaPrinter | None = None) -> str:
    return (printer or NumbaPrinter()).doprint(expr)


def formula_tree(expr: sympy.Basic, indices: tuple[str, ...] = ()):
    """A formula of dims and unit indices (a constant, a mask, an init argument) as the literal
    tree `cellspec.formula` evaluates exactly, e.g. `j*modules // hidden >= i` ->
    `('>=', ('//', ('*', ('index', 'j'), ('dim', 'modules')), ('dim', 'hidden')), ('index', 'i'))`.
    A symbol named in `indices` is a unit index, any other a dim. SymPy's floor(a/b) becomes
    `('//', numerator, denominator)`, and a product with negative powers `('/', num, den)`."""

    def tree(e):
        if isinstance(e, sympy.Integer):
            return int(e)
        if isinstance(e, sympy.Rational):
            return ("frac", int(e.p), int(e.q))
        if isinstance(e, sympy.Float):
            return ("frac", *float(e).as_integer_ratio())
        if isinstance(e, sympy.Symbol):
            return ("index", e.name) if e.name in indices else ("dim", e.name)
        if isinstance(e, sympy.Add):
            return ("+", *(tree(a) for a in e.args))
        if isinstance(e, (sympy.Mul, sympy.Pow)):
            num, den = [], []
            for f in sympy.Mul.make_args(e):
                if f.is_Rational:
                    num += [f.p] if f.p != 1 else []
                    den += [f.q] if f.q != 1 else []
                elif f.is_Pow and f.exp.is_Number and f.exp.is_negative:
                    den.append(sympy.Pow(f.base, -f.exp))
                elif f.is_Pow and f.exp == sympy.S.Half:
                    num.append(("sqrt", f.base))
                elif f.is_Pow:
                    num.append(("**", f.base, f.exp))
                else:
                    num.append(f)
            top = product(num)
            return top if not den else ("/", top, product(den))
        if isinstance(e, (sympy.floor, sympy.ceiling)):
            n, d = e.args[0].as_numer_denom()
            if isinstance(e, sympy.floor):
                return ("//", tree(n), tree(d))
            return ("*", -1, ("//", tree(-n), tree(d)))
        if isinstance(e, sympy.Mod):
            return ("%", tree(e.args[0]), tree(e.args[1]))
        if isinstance(e, (sympy.Min, sympy.Max)):
            return ("min" if isinstance(e, sympy.Min) else "max", *(tree(a) for a in e.args))
        if isinstance(e, sympy.core.relational.Relational):
            return (e.rel_op, tree(e.lhs), tree(e.rhs))
        if isinstance(e, (sympy.And, sympy.Or)):
            return ("and" if isinstance(e, sympy.And) else "or", *(tree(a) for a in e.args))
        raise TypeError(f"internal error: {type(e).__name__} in the formula {e} has no formula tree")

    def product(factors):
        """The tree of a product of factors: SymPy expressions, ints, or (op, base[, exp]) parts."""
        trees = [f if isinstance(f, int) else (f[0], *(tree(a) for a in f[1:])) if isinstance(f, tuple) else tree(f) for f in factors]
        return 1 if not trees else trees[0] if len(trees) == 1 else ("*", *trees)

    return tree(expr)
