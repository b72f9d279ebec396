#!/usr/bin/env python3
"""Data-parallel training of a small regression model with PyTorch DDP.

A plain torch.distributed script: it reads only the standard environment
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) through
init_process_group's env:// method, as torchrun and gangway both set it.
Gloo on CPU, NCCL when CUDA is available (one GPU per rank: the one it
sees, or the LOCAL_RANK-th when it sees all of the node's).

Each rank trains on its own shard of synthetic data (seeded by the rank), so
the ranks' parameters agree at the end only if DDP really averaged their
gradients. Output, on every rank:

    step=N loss=X      every --log-every steps and after the last: the loss
                       of the model before step N's update, averaged over
                       all ranks (gangway's metric line format, name=value)
    final_loss=X       the same value as the last loss
    params_sha256 HEX  SHA-256 of the final parameters (float32 bytes, in
                       model.parameters() order); no `=`, so not a metric

Before exiting, the ranks compare their hashes with an all-gather; a rank
that sees a different one prints `params differ` and exits 1, so the job
fails rather than reporting a model nobody has.
"""

import argparse
import hashlib
import os
import sys

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lr", type=float, default=0.05, help="SGD learning rate")
    p.add_argument("--steps", type=int, default=50, help="optimizer steps")
    p.add_argument("--samples", type=int, default=256, help="samples per rank")
    p.add_argument("--dim", type=int, default=8, help="input features")
    p.add_argument("--hidden", type=int, default=16, help="hidden units")
    p.add_argument("--seed", type=int, default=1, help="seed of the data and the initial model")
    p.add_argument("--log-every", type=int, default=10, help="print the loss every N steps")
    p.add_argument("--backend", choices=["auto", "gloo", "nccl"], default="auto",
                   help="auto: nccl when CUDA is available, else gloo")
    return p.parse_args()


def shard(args, rank, device):
    # The generating model is the same on every rank (seed alone); the
    # samples differ by rank.
    g = torch.Generator().manual_seed(args.seed)
    w_true = torch.randn(args.dim, 1, generator=g)
    g = torch.Generator().manual_seed(args.seed * 1000 + rank + 1)
    x = torch.randn(args.samples, args.dim, generator=g)
    y = torch.tanh(x @ w_true) + 0.05 * torch.randn(args.samples, 1, generator=g)
    return x.to(device), y.to(device)


def emit(line, stream=sys.stdout):
    # One write per line: under torchrun several workers share one stdout,
    # and print() may write the text and its newline separately.
    stream.write(line + "\n")
    stream.flush()


def params_sha256(model):
    h = hashlib.sha256()
    for p in model.parameters():
        h.update(p.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def main():
    args = parse_args()
    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))

    backend = args.backend
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl" and not torch.cuda.is_available():
        emit("ddp_train.py: --backend nccl needs CUDA, and this torch sees no GPU "
             f"(torch {torch.__version__}, CUDA_VISIBLE_DEVICES="
             f"{os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')!r})", sys.stderr)
        return 2
    if backend == "nccl":
        # gangway narrows CUDA_VISIBLE_DEVICES to each rank's own GPU (so
        # it sees one, index 0); torchrun leaves a node's GPUs visible to
        # every worker, which picks its own by LOCAL_RANK. This covers both.
        gpu = local_rank % torch.cuda.device_count()
        torch.cuda.set_device(gpu)
        device = torch.device("cuda", gpu)
    else:
        device = torch.device("cpu")
    dist.init_process_group(backend, init_method="env://")

    torch.manual_seed(args.seed)  # DDP broadcasts rank 0's model; same seed anyway
    model = nn.Sequential(nn.Linear(args.dim, args.hidden), nn.Tanh(),
                          nn.Linear(args.hidden, 1)).to(device)
    ddp = DDP(model, device_ids=[device.index] if backend == "nccl" else None)
    opt = torch.optim.SGD(ddp.parameters(), lr=args.lr)
    x, y = shard(args, rank, device)

    loss_sum = torch.zeros(1, device=device)
    for step in range(args.steps + 1):
        loss = nn.functional.mse_loss(ddp(x), y)
        if step % args.log_every == 0 or step == args.steps:
            loss_sum.copy_(loss.detach().reshape(1))
            dist.all_reduce(loss_sum)
            mean = loss_sum.item() / world
            emit(f"step={step} loss={mean:.6f}")
        if step == args.steps:
            emit(f"final_loss={mean:.6f}")
            break
        opt.zero_grad()
        loss.backward()
        opt.step()

    sha = params_sha256(model)
    emit(f"params_sha256 {sha}")
    # 60 bits of the hash as an integer: enough to tell equal from unequal.
    mine = torch.tensor([int(sha[:15], 16)], dtype=torch.int64, device=device)
    every = [torch.zeros_like(mine) for _ in range(world)]
    dist.all_gather(every, mine)
    differ = [r for r, v in enumerate(every) if v.item() != mine.item()]
    dist.destroy_process_group()
    if differ:
        emit(f"params differ from ranks {differ}", sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
