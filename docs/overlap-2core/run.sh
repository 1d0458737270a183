#!/bin/bash
# Overlap on/off side by side, interleaved: tf_tutorial_cnn at 2x1x1 (and seed_cnn), real data.
D=/work/shared/data/cifar-10-batches-bin
B=/work/main/build/coordinator/threadsplit
for rep in 1 2 3 4 5; do
  for kb in 0 1024; do
    for m in tf_tutorial_cnn; do
      $B --model $m --data $D --procs 2 --threads 1 --steps 80 --warmup-steps 10 --eval-every 0 --progress off \
         --bucket-kb $kb --report /tmp/ovm/${m}_kb${kb}_r${rep}.json > /tmp/ovm/${m}_kb${kb}_r${rep}.out 2>&1
    done
  done
done
echo finished > /tmp/ovm/done
