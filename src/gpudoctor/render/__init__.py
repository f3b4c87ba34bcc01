"""Renderers turn a Report into text or JSON; they never judge and never probe."""
