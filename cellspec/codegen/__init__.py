"""Code generation: SymPy printed for Numba, and a schedule emitted as a Python module."""
