"""Facades that keep the public API of the five systems mnemolog grew from
(names, arguments, return shapes and errors), so that code written against
them runs on a mnemolog store unchanged. See docs/compat.md."""
