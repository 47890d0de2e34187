"""Thin wrappers over the Python rules so every target gets the same defaults."""

load("@rules_python//python:defs.bzl", "py_binary", "py_library", "py_test")

def jp_py_library(name, srcs, deps = [], **kwargs):
    py_library(name = name, srcs = srcs, deps = deps, imports = ["."], **kwargs)

def jp_py_binary(name, srcs, main, deps = [], **kwargs):
    py_binary(name = name, srcs = srcs, main = main, deps = deps, python_version = "PY3", **kwargs)

def jp_py_test(name, srcs, deps = [], **kwargs):
    py_test(
        name = name,
        srcs = srcs,
        main = srcs[0],
        deps = deps + ["@pip//pytest"],
        size = "medium",
        env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=8"},
        **kwargs
    )
