#!/usr/bin/env bash
#
# make-chain.sh CHAIN_DIR CERTS_TOOL: make the shared test chain (the ctest
# fixture chain_setup) with the real certificate tool.  The OINs are those
# in tests/common.h; the endpoints are tcp://127.0.0.1:17101..17106.
# Keys are made here, at test time: none are kept in git.
#
set -euo pipefail

if [[ $# -ne 2 ]]; then
	echo "usage: $0 CHAIN_DIR CERTS_TOOL" >&2
	exit 2
fi
chain=$1
tool=$2

rm -rf -- "$chain"
"$tool" init --dir "$chain" --name "Ketenpost testketen" >/dev/null

org() {
	"$tool" org --dir "$chain" --oin "$1" --role "$2" --name "$3" \
	    --endpoint "tcp://127.0.0.1:$4" >/dev/null
}

org 00000001001234567000 leerplicht "Gemeente Testdam / Leerplicht" 17101
org 00000001002345678000 halt "Halt Testregio" 17102
org 00000001003456789000 rvdk "Raad voor de Kinderbescherming" 17103
org 00000001004567890000 om "Openbaar Ministerie" 17104
org 00000001005678901000 jbt "Jeugdbeschermingstafel Testdam" 17105
org 00000001006789012000 auditor "Ketenauditor" 17106

"$tool" bundle --dir "$chain" >/dev/null

echo "test chain ready in $chain"
