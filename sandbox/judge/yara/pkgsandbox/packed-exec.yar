// pkgsandbox's own source rule (same meta keys as GuardDog's, read by
// sandbox/judge/static.py). GuardDog's decode-then-exec rules name the modules as
// `zlib.decompress(base64...`; packers (PyObfuscate, freecodingtools, "Kramer" …)
// reach them by `__import__('zlib')` in a lambda, reverse the blob (`__[::-1]`) and
// call it through a variable, which none of those patterns see.
rule pkgsandbox_packed_exec
{
    meta:
        author = "pkgsandbox"
        description = "Runs a packed blob: a decoder reached through __import__('<codec module>'), exec/eval, and an encoded literal of 1 KiB or more"
        identifies = "threat.runtime.obfuscation.packed"
        severity = "high"
        path_include = "*.py,*.pyx,*.pyi,*.pth"

    strings:
        $dyn_import = /__import__\s*\(\s*['"](zlib|base64|marshal|lzma|bz2|gzip|binascii|codecs)['"]\s*\)/
        $exec = /[^.\w](exec|eval)\s*\(/
        // one literal of 1024+ characters of the base64 / base32 / hex alphabets
        $blob = /[A-Za-z0-9+\/=_-]{1024}/

    condition:
        $dyn_import and $exec and $blob
}

// Hyperion, PyArmor-less "Kramer"-style and hand-rolled obfuscators spell the names of
// the builtins that run code as escapes (`globals()['\x65\x76\x61\x6c']`), so that no
// reader or rule sees `eval`. No one writes those names that way but to hide them.
rule pkgsandbox_escaped_builtin
{
    meta:
        author = "pkgsandbox"
        description = "Spells exec, eval, compile, __import__ or builtins as \\x escapes: hides which builtin runs code"
        identifies = "threat.runtime.obfuscation.escaped"
        severity = "high"
        path_include = "*.py,*.pyx,*.pyi,*.pth"

    strings:
        $exec = "\\x65\\x78\\x65\\x63" nocase
        $eval = "\\x65\\x76\\x61\\x6c" nocase
        $compile = "\\x63\\x6f\\x6d\\x70\\x69\\x6c\\x65" nocase
        $import = "\\x5f\\x5f\\x69\\x6d\\x70\\x6f\\x72\\x74\\x5f\\x5f" nocase
        $builtins = "\\x62\\x75\\x69\\x6c\\x74\\x69\\x6e\\x73" nocase

    condition:
        any of them
}

// Decode and run on one line, in either order: `exec(zlib.decompress(b64decode(s)))`,
// `p = base64.b64decode(s); exec(p)`. GuardDog's base64exec matches a file with a
// b64decode anywhere and an eval( anywhere (playwright's page.py: a "$eval()" comment).
rule pkgsandbox_decode_exec
{
    meta:
        author = "pkgsandbox"
        description = "Decodes and runs code on one line (exec/eval of base64, zlib, marshal, hex)"
        identifies = "threat.runtime.obfuscation.decode_exec"
        severity = "high"
        path_include = "*.py,*.pyx,*.pyi,*.pth"

    strings:
        $exec_of_decoded = /\b(exec|eval)\s*\([^\n]{0,200}(b64decode|b32decode|b85decode|a85decode|decodebytes|unhexlify|decompress|marshal\.loads)\(/
        $decoded_then_exec = /(b64decode|b32decode|b85decode|a85decode|decodebytes|unhexlify|decompress|marshal\.loads)\([^\n]{0,200}[;:]\s*(exec|eval)\s*\(/

    condition:
        any of them
}
