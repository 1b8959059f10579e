#!/usr/bin/env bash
# Runs every cargo-fuzz target for a given time, minimizes each corpus, and writes the
# figures as a table into fuzz/README.md (between the "campaign" markers).
#
#   scripts/fuzz-campaign.sh SECONDS [TARGET...]    # default: every target, 600 s each
#
# Run from anywhere; it works in the repository root. Targets run one after another, or
# FUZZ_JOBS at a time (a campaign on a shared machine should be started with `nice -n 10`). Needs
# cargo-fuzz (`cargo install cargo-fuzz --locked`) and a nightly toolchain; set
# FUZZ_TOOLCHAIN=stable to use RUSTC_BOOTSTRAP=1 with the stable one instead.
# A target that finds a crash is reported as such in the table, its artifact stays in
# fuzz/artifacts/<target>/, and the campaign goes on with the next target; the script
# exits non-zero at the end if any target failed. A minimized corpus of at most
# FUZZ_KEEP_BYTES (256 KiB) is copied to fuzz/corpus-kept/<target>/, which is committed and
# seeds the next campaign on a fresh clone.
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${1:-600}"
shift || true

toolchain="${FUZZ_TOOLCHAIN:-nightly}"
if [[ "$toolchain" == "stable" ]]; then
    fuzz=(env RUSTC_BOOTSTRAP=1 cargo fuzz)
else
    fuzz=(cargo "+$toolchain" fuzz)
fi

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <("${fuzz[@]}" list)
fi

# The working corpora (gitignored) start from the spec-vector seeds plus the minimized
# corpora an earlier campaign kept in the repository (fuzz/corpus-kept/<target>/).
if [[ ! -d fuzz/corpus ]]; then
    python3 fuzz/seed.py
    for kept in fuzz/corpus-kept/*/; do
        [[ -d "$kept" ]] || continue
        mkdir -p "fuzz/corpus/$(basename "$kept")"
        cp -n "$kept"* "fuzz/corpus/$(basename "$kept")/"
    done
fi
# A minimized corpus up to this size is kept in the repository for the next campaign.
keep_bytes="${FUZZ_KEEP_BYTES:-262144}"

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
echo "building ${#targets[@]} targets (ASan)…" >&2
"${fuzz[@]}" build >&2

# One target's run, cmin and table row (in $logs/$t.row); non-zero when it found something.
campaign_one() {
    local t="$1" log="$logs/$1.log" result="no findings" status=0
    mkdir -p "fuzz/corpus/$t"
    echo "== $t: ${seconds}s" >&2
    if ! "${fuzz[@]}" run "$t" "fuzz/corpus/$t" -- -max_total_time="$seconds" -print_final_stats=1 \
        >"$log" 2>&1; then
        result="**FAILED** (see fuzz/artifacts/$t/)"
        status=1
    fi
    local runs rate last cov ft before after
    runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}')
    # libFuzzer's final stats have no rate: executions over the time given.
    rate=$([[ -n "$runs" ]] && echo $((runs / seconds)) || true)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    cov=$(grep -o 'cov: [0-9]*' <<<"$last" | awk '{print $2}')
    ft=$(grep -o 'ft: [0-9]*' <<<"$last" | awk '{print $2}')
    before=$(find "fuzz/corpus/$t" -type f | wc -l)
    if [[ "$result" == "no findings" ]]; then
        "${fuzz[@]}" cmin "$t" "fuzz/corpus/$t" >"$logs/$t.cmin.log" 2>&1 || result="$result; cmin failed"
    fi
    after=$(find "fuzz/corpus/$t" -type f | wc -l)
    if [[ "$result" == "no findings" ]] && (($(du -sb "fuzz/corpus/$t" | cut -f1) <= keep_bytes)); then
        rm -rf "fuzz/corpus-kept/$t" && mkdir -p "fuzz/corpus-kept/$t" && cp "fuzz/corpus/$t/"* "fuzz/corpus-kept/$t/"
        result="$result; corpus kept"
    fi
    echo "| \`$t\` | ${seconds} s | ${runs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | $before → $after | $result |" \
        >"$logs/$t.row"
    echo "   $t: ${runs:-?} runs, ${rate:-?}/s, cov ${cov:-?}, corpus $before → $after, $result" >&2
    return "$status"
}

# FUZZ_JOBS targets at a time (default 1): each libFuzzer process is single-threaded.
jobs="${FUZZ_JOBS:-1}"
failed=0
running=0
for t in "${targets[@]}"; do
    if ((running >= jobs)); then
        wait -n || failed=1
        running=$((running - 1))
    fi
    campaign_one "$t" &
    running=$((running + 1))
done
while ((running > 0)); do
    wait -n || failed=1
    running=$((running - 1))
done
rows=()
for t in "${targets[@]}"; do
    rows+=("$(cat "$logs/$t.row" 2>/dev/null || echo "| \`$t\` | ${seconds} s | ? | ? | ? | ? | ? | no result (script error) |")")
done

table="$logs/table.md"
{
    echo "<!-- campaign -->"
    echo "Last campaign: ${seconds} s per target, $jobs target(s) at a time, $(date -u +%Y-%m-%d) ($(nproc) cores;"
    echo "\`FUZZ_JOBS=$jobs scripts/fuzz-campaign.sh $seconds\`). \`corpus\` is the inputs kept before → after \`cargo fuzz cmin\`;"
    echo "exec/s is executions over the time given."
    echo
    echo "| target | time | executions | exec/s | cov | ft | corpus | result |"
    echo "|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    echo "<!-- /campaign -->"
} >"$table"

readme=fuzz/README.md
if grep -q '<!-- campaign -->' "$readme"; then
    awk -v table="$table" '
        /<!-- campaign -->/ { while ((getline line < table) > 0) print line; skip = 1; next }
        /<!-- \/campaign -->/ { skip = 0; next }
        !skip { print }
    ' "$readme" >"$readme.new"
    mv "$readme.new" "$readme"
else
    { echo; echo "## Campaign"; echo; cat "$table"; } >>"$readme"
fi
echo "table written to $readme" >&2
exit "$failed"
