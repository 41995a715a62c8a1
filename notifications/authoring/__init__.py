"""Templates as staff write them: versions, the editor's writes, stale-edit checks, files,
preview, test sends, and the sandboxed renderer (`rendering`)."""
