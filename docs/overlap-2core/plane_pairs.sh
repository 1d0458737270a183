#!/bin/bash
# The data plane side by side: tf_tutorial_cnn at 2x1x1, 80 steps (timed after 10), grpc and shm
# interleaved, 5 pairs, real data. Writes plane_<dp>_r<k>.json into the directory given.
out=${1:-/tmp/planes}; mkdir -p "$out"
D=${DATA:-/work/shared/data/cifar-10-batches-bin}
B=${BIN:-build/coordinator/threadsplit}
for rep in 1 2 3 4 5; do
  for dp in grpc shm; do
    $B --model tf_tutorial_cnn --data $D --procs 2 --threads 1 --steps 80 --warmup-steps 10 --eval-every 0 \
       --progress off --data-plane $dp --report "$out/plane_${dp}_r${rep}.json" > /dev/null 2>&1
  done
done
