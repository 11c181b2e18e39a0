using System;
using System.Threading;

namespace FastKernelAttention.Internals;

/// <summary>One unit of parallel work: block <c>block</c> computed by worker <c>worker</c> (0 = the calling thread), which owns
/// scratch slice <c>worker</c>.</summary>
internal interface IBlockWork
{
    void Execute(int block, int worker);
}

/// <summary>
/// Runs blocks 0..count−1 on up to <c>degree</c> threads without allocating in the steady state: a fixed set of background
/// workers waits on semaphores, the work is a struct held by a cached per-type job object, and blocks are claimed with an
/// interlocked counter. Which thread computes a block never changes what the block computes, so results do not depend on
/// the degree. If another call holds the workers, this call runs on the calling thread alone (same result).
/// </summary>
internal static class BlockParallel
{
    private static readonly object Gate = new();
    private static Worker[] workers = Array.Empty<Worker>();

    /// <summary>Threads a call with <see cref="AttentionOptions.MaxDegreeOfParallelism"/> = <paramref name="requested"/> may use.</summary>
    public static int ResolveDegree(int requested) => requested switch
    {
        -1 => Environment.ProcessorCount,
        <= 1 => 1,
        _ => requested,
    };

    public static void Run<TWork>(ref TWork work, int blockCount, int degree)
        where TWork : struct, IBlockWork
    {
        int threads = System.Math.Min(degree, blockCount);
        if (threads <= 1 || !Monitor.TryEnter(Gate))
        {
            for (int block = 0; block < blockCount; block++) work.Execute(block, 0);
            return;
        }

        try
        {
            EnsureWorkers(threads - 1);
            Job<TWork> job = Job<TWork>.Cached ??= new Job<TWork>();
            job.Work = work;
            job.Start(blockCount, threads);
            for (int i = 0; i < threads - 1; i++) workers[i].Post(job, i + 1);
            job.RunWorker(0);
            job.WaitForWorkers();
            job.Work = default;
        }
        finally
        {
            Monitor.Exit(Gate);
        }
    }

    private static void EnsureWorkers(int count)
    {
        if (workers.Length >= count) return;
        var grown = new Worker[count];
        Array.Copy(workers, grown, workers.Length);
        for (int i = workers.Length; i < count; i++) grown[i] = new Worker(i + 1);
        workers = grown;
    }

    private abstract class JobBase
    {
        private int nextBlock;
        private int blockCount;
        private int pendingWorkers;
        private readonly ManualResetEventSlim done = new(false);

        public void Start(int count, int threads)
        {
            nextBlock = 0;
            blockCount = count;
            pendingWorkers = threads - 1;
            done.Reset();
        }

        public void RunWorker(int worker)
        {
            int block;
            while ((block = Interlocked.Increment(ref nextBlock) - 1) < blockCount) Execute(block, worker);
        }

        public void WorkerFinished()
        {
            if (Interlocked.Decrement(ref pendingWorkers) == 0) done.Set();
        }

        /// <summary>Always waits for the event, even when the counter already reads 0: the last worker decrements first and
        /// sets the event afterwards, so skipping the wait could let that late Set land after the next call's Reset, and
        /// that call would then return while its workers still read its (stack-allocated) problem.</summary>
        public void WaitForWorkers() => done.Wait();

        protected abstract void Execute(int block, int worker);
    }

    private sealed class Job<TWork> : JobBase
        where TWork : struct, IBlockWork
    {
        [ThreadStatic]
        public static Job<TWork>? Cached;

        public TWork Work;

        protected override void Execute(int block, int worker) => Work.Execute(block, worker);
    }

    private sealed class Worker
    {
        private readonly SemaphoreSlim signal = new(0);
        private JobBase? job;
        private int index;

        public Worker(int index)
        {
            this.index = index;
            var thread = new Thread(Loop, maxStackSize: 4 << 20) { IsBackground = true, Name = $"FastKernelAttention worker {index}" };
            thread.Start();
        }

        public void Post(JobBase work, int workerIndex)
        {
            job = work;
            index = workerIndex;
            signal.Release();
        }

        private void Loop()
        {
            while (true)
            {
                signal.Wait();
                JobBase current = job!;
                current.RunWorker(index);
                job = null;
                current.WorkerFinished();
            }
        }
    }
}
