#!/usr/bin/env bash
# Runs every cargo-fuzz target for a given time, minimizes each corpus, and writes the
# figures as a table into fuzz/README.md (between the "campaign" markers).
#
#   scripts/fuzz-campaign.sh SECONDS [TARGET...]    # default: every target, 600 s each
#
# Run from anywhere; it works in the repository root. Targets run one after another (a
# campaign on a shared 2-core machine should be started with `nice -n 10`). Needs
# cargo-fuzz (`cargo install cargo-fuzz --locked`) and a nightly toolchain; set
# FUZZ_TOOLCHAIN=stable to use RUSTC_BOOTSTRAP=1 with the stable one instead.
# A target that finds a crash is reported as such in the table, its artifact stays in
# fuzz/artifacts/<target>/, and the campaign goes on with the next target; the script
# exits non-zero at the end if any target failed.
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

[[ -d fuzz/corpus ]] || python3 fuzz/seed.py

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
echo "building ${#targets[@]} targets (ASan)…" >&2
"${fuzz[@]}" build >&2

failed=0
rows=()
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    echo "== $t: ${seconds}s" >&2
    log="$logs/$t.log"
    result="no findings"
    if ! "${fuzz[@]}" run "$t" "fuzz/corpus/$t" -- -max_total_time="$seconds" -print_final_stats=1 \
        >"$log" 2>&1; then
        result="**FAILED** (see fuzz/artifacts/$t/)"
        failed=1
    fi
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
    rows+=("| \`$t\` | ${seconds} s | ${runs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | $before → $after | $result |")
    echo "   ${runs:-?} runs, ${rate:-?}/s, cov ${cov:-?}, corpus $before → $after, $result" >&2
done

table="$logs/table.md"
{
    echo "<!-- campaign -->"
    echo "Last campaign: ${seconds} s per target, one target at a time, $(date -u +%Y-%m-%d) ($(nproc) cores;"
    echo "\`scripts/fuzz-campaign.sh $seconds\`). \`corpus\` is the inputs kept before → after \`cargo fuzz cmin\`;"
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
