#!/usr/bin/env bash
# Measures which segment preallocation and which write flags are fastest on this disk.
# Usage: bash bench/fio_matrix.sh [DIR]   (DIR must be on the disk the WAL will use; not tmpfs)
set -euo pipefail
dir=${1:-/var/tmp/percore-fio}
mkdir -p "$dir"
command -v fio >/dev/null || { echo "fio is not installed (apt-get install -y fio)"; exit 1; }
run() { # name, extra fio args...
  local name=$1; shift
  rm -f "$dir/f"
  case "$prep" in
    zeroed) dd if=/dev/zero of="$dir/f" bs=1M count=256 oflag=direct status=none; sync ;;
    fallocated) fallocate -l 256M "$dir/f"; sync ;;
    growing) : ;;
  esac
  local out
  out=$(fio --name=t --filename="$dir/f" --ioengine=io_uring --rw=write --size=256M \
    --runtime=4 --time_based=0 --output-format=terse --terse-version=3 "$@" 2>/dev/null)
  # terse v3: field 49 write iops, 48 write bw KiB/s, write clat mean (field 57 mean usec?)
  echo "$out" | awk -F';' -v n="$name" -v p="$prep" '{printf "| %-10s | %-34s | %10s IOPS | %8.1f MiB/s |\n", p, n, $49, $48/1024}'
}
echo "| prealloc   | writes                             | result          | bandwidth      |"
echo "|---|---|---|---|"
for prep in growing fallocated zeroed; do
  run "4k buffered + fdatasync"      --bs=4k --fdatasync=1
  run "4k O_DIRECT + fdatasync"      --bs=4k --direct=1 --fdatasync=1
  run "4k O_DIRECT|O_DSYNC"          --bs=4k --direct=1 --sync=dsync
  run "64k buffered + fdatasync"     --bs=64k --fdatasync=1
  run "64k O_DIRECT + fdatasync"     --bs=64k --direct=1 --fdatasync=1
  run "64k O_DIRECT|O_DSYNC"         --bs=64k --direct=1 --sync=dsync
  run "1m buffered + fdatasync"      --bs=1m --fdatasync=1
  run "1m O_DIRECT + fdatasync"      --bs=1m --direct=1 --fdatasync=1
done
rm -rf "$dir"
