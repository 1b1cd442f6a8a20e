"""Docker's image reference grammar, so that an ImageUri the engine would refuse is refused at
validation (the model's pattern for ImageUri is `.*`).

The grammar of github.com/distribution/reference, as the engine applies it:

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [ registry "/" ] path-component [ "/" path-component ]*
                  (at most 255 characters once completed: NAME is docker.io/library/NAME)
    registry   := domain-component [ "." domain-component ]* [ ":" port ]
                  (the first component is a registry only if it has a "." or ":" or is
                  "localhost"; otherwise it is a path component, which must be lowercase)
    path-component := [a-z0-9]+ ( separator [a-z0-9]+ )*,  separator := "." | "_" | "__" | "-"+
    tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest     := algorithm ":" hex, with sha256 (64), sha384 (96) or sha512 (128) lowercase hex
                  digits, the algorithms the engine knows

IPv6 registry addresses (`[::1]:5000/x`) are not accepted: this engine's API refuses them too.
"""

from __future__ import annotations

import re

NAME_MAX_LENGTH = 255
_DEFAULT_REGISTRY = "docker.io/"
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_REGISTRY = re.compile(rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*):([0-9a-fA-F]{32,})")
_DIGEST_HEX_DIGITS = {"sha256": 64, "sha384": 96, "sha512": 128}
_LOWER_HEX = re.compile(r"[0-9a-f]+")

RULE = (
    "ImageUri must be a Docker image reference [REGISTRY[:PORT]/]PATH[:TAG][@DIGEST] "
    "with lowercase path components"
)


def image_reference_problem(reference: str) -> str | None:
    """Why Docker would refuse `reference` as an image name, or None when it is a valid one."""
    if not reference:
        return "it is empty"
    name_and_tag, at, digest = reference.partition("@")
    if at:
        problem = _digest_problem(digest)
        if problem:
            return problem
    name, tag = name_and_tag, None
    colon = name_and_tag.rfind(":")
    if colon > name_and_tag.rfind("/"):
        name, tag = name_and_tag[:colon], name_and_tag[colon + 1 :]
    if tag is not None and not _TAG.fullmatch(tag):
        return (
            f"tag '{tag}' must be 1 to 128 letters, digits, '_', '.' or '-', "
            "not starting with '.' or '-'"
        )
    return _name_problem(name)


def _name_problem(name: str) -> str | None:
    components = name.split("/")
    first = components[0]
    full_name = name
    if len(components) > 1 and (any(c in first for c in ".:") or first == "localhost"):
        if not _REGISTRY.fullmatch(first):
            return f"registry '{first}' must be a host name with an optional :PORT"
        components = components[1:]
    else:  # the engine counts the name as it completes it: docker.io/library/NAME
        full_name = _DEFAULT_REGISTRY + ("library/" if len(components) == 1 else "") + name
    if len(full_name) > NAME_MAX_LENGTH:
        return f"the full name {full_name[:40]}… is longer than {NAME_MAX_LENGTH} characters"
    for component in components:
        if not component:
            return "the path has an empty component (a leading, trailing or double '/')"
        if not _PATH_COMPONENT.fullmatch(component):
            return (
                f"path component '{component}' must be lowercase letters and digits, "
                "separated by '.', '_', '__' or '-'"
            )
    return None


def _digest_problem(digest: str) -> str | None:
    match = _DIGEST.fullmatch(digest)
    if match is None:
        return f"digest '{digest}' must be ALGORITHM:HEX, e.g. sha256: and 64 hex digits"
    algorithm, hex_digits = match.groups()
    expected = _DIGEST_HEX_DIGITS.get(algorithm)
    if expected is None:
        return f"digest algorithm '{algorithm}' is not one of {', '.join(_DIGEST_HEX_DIGITS)}"
    if len(hex_digits) != expected or not _LOWER_HEX.fullmatch(hex_digits):
        return f"a {algorithm} digest has {expected} lowercase hex digits"
    return None
