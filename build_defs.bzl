"""Thin wrappers over Bazel's native Python rules so every target gets the same defaults.

No rule set is fetched: these are the py_library/py_binary/py_test rules built into Bazel (the
Debian package bazel-bootstrap works offline). Third-party packages are not Bazel targets: they
are imported from the Python environment whose `python3` is first on PATH when Bazel runs (an
activated virtualenv; .bazelrc passes PATH through to actions and tests). Each target lists the
distributions it imports in `pip`, which becomes `pip:<name>` tags, so
`bazel query 'attr(tags, "pip:jax", //...)'` finds the users of a package.

Every py_test runs its first source file through pytest (tools/pytest_main.py), so a failing
assertion fails the target.
"""

_PYTEST_MAIN = "//:tools/pytest_main.py"

def _pip_tags(pip):
    return ["pip:" + p for p in pip]

def jp_py_library(name, srcs, deps = [], pip = [], tags = [], **kwargs):
    native.py_library(
        name = name,
        srcs = srcs,
        deps = deps,
        imports = ["."],
        srcs_version = "PY3",
        tags = tags + _pip_tags(pip),
        **kwargs
    )

def jp_py_binary(name, srcs, main, deps = [], pip = [], tags = [], **kwargs):
    native.py_binary(
        name = name,
        srcs = srcs,
        main = main,
        deps = deps,
        imports = ["."],
        python_version = "PY3",
        srcs_version = "PY3",
        legacy_create_init = 0,
        tags = tags + _pip_tags(pip),
        **kwargs
    )

def jp_py_test(name, srcs, deps = [], pip = [], tags = [], data = [], size = "medium", **kwargs):
    """A py_test that runs `pytest srcs[0]`; the other srcs (e.g. conftest.py) come along."""
    if [s for s in srcs if s.endswith("pytest_main.py")]:
        fail("%s: list only the test file(s); the pytest runner is added by jp_py_test" % name)
    native.py_test(
        name = name,
        srcs = srcs + [_PYTEST_MAIN],
        main = _PYTEST_MAIN,
        args = ["$(rootpath %s)" % srcs[0]],
        deps = deps,
        data = data + ["//:pyproject.toml"],
        imports = ["."],
        python_version = "PY3",
        srcs_version = "PY3",
        legacy_create_init = 0,
        size = size,
        timeout = "long",
        env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=8"},
        tags = tags + _pip_tags(pip),
        **kwargs
    )

# ---------------------------------------------------------------- offline rule-set stand-ins
# Bazel 4's own tools (@bazel_tools//tools/cpp and //tools/jdk, which every target reaches
# through toolchain resolution) load @rules_cc//cc:defs.bzl and @rules_java//java:defs.bzl, and
# Bazel's WORKSPACE suffix would download those rule sets from GitHub for it. The versions it
# pins only forward to Bazel's built-in rules, so WORKSPACE defines both repositories with
# `native_rules_forwarder`, which writes the same forwarding macros: nothing is fetched.

CC_RULES = [
    "cc_binary",
    "cc_import",
    "cc_library",
    "cc_proto_library",
    "cc_test",
    "cc_toolchain",
    "cc_toolchain_suite",
    "fdo_prefetch_hints",
    "fdo_profile",
    "objc_import",
    "objc_library",
]

JAVA_RULES = [
    "java_binary",
    "java_import",
    "java_library",
    "java_lite_proto_library",
    "java_package_configuration",
    "java_plugin",
    "java_proto_library",
    "java_runtime",
    "java_test",
    "java_toolchain",
]

def _native_rules_forwarder_impl(rctx):
    pkg = rctx.attr.package
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)
    rctx.file("BUILD", "")
    build = [
        'package(default_visibility = ["//visibility:public"])',
        'exports_files(["defs.bzl"])',
    ]
    if rctx.attr.toolchain_type:
        build.append('alias(name = "toolchain_type", actual = "%s")' % rctx.attr.toolchain_type)
    rctx.file(pkg + "/BUILD", "\n".join(build) + "\n")
    rctx.file(pkg + "/defs.bzl", "\n".join(
        ['"""Forwards to Bazel\'s built-in rules (written by //:build_defs.bzl)."""', ""] +
        ["def %s(**attrs):\n    native.%s(**attrs)\n" % (r, r) for r in rctx.attr.rules],
    ))

native_rules_forwarder = repository_rule(
    implementation = _native_rules_forwarder_impl,
    attrs = {
        "package": attr.string(mandatory = True, doc = "Package holding defs.bzl, e.g. cc."),
        "rules": attr.string_list(mandatory = True, doc = "Native rules to forward."),
        "toolchain_type": attr.string(doc = "Label that <package>:toolchain_type aliases."),
    },
    doc = "A local rule-set repository whose <package>/defs.bzl forwards to native rules.",
)

def _offline_coverage_tools_impl(rctx):
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)
    rctx.file(
        "unavailable.sh",
        "#!/bin/sh\necho 'bazel coverage is not set up for jaxpapers (offline build)' >&2\nexit 1\n",
        executable = True,
    )
    rctx.file("BUILD", "\n".join([
        'package(default_visibility = ["//visibility:public"])',
        'sh_binary(name = "coverage_report_generator", srcs = ["unavailable.sh"])',
        'sh_binary(name = "lcov_merger", srcs = ["unavailable.sh"])',
        "",
    ]))

offline_coverage_tools = repository_rule(
    implementation = _offline_coverage_tools_impl,
    doc = "Stands in for @remote_coverage_tools (a download Bazel's test rules name even when " +
          "coverage is off); its tools only report that coverage is not set up.",
)
