"""Fuzz targets. Each module defines NAME, seeds(), generate(r, pool), mutate_bytes(r, data, pool),
prepare(case, work) -> (call, paths) and check(result, case); optionally available(),
typed_errors(case), clear(message, case, paths) and STDLIB (a reference target whose
crashes are not steepest's)."""

from targets import bombs, csvfiles, idx, images, meta, npz, reports, special, toml, tomlstd

TARGETS = {m.NAME: m for m in (idx, npz, csvfiles, images, toml, tomlstd, meta, bombs, reports, special)}
