package hazelog.mapstore;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;

/**
 * Single calls (a write-through store, a load) grouped into batches: each caller hands over its
 * item and waits for its own answer; one thread of this class runs whatever has queued up
 * meanwhile as one batch (one transaction, one SELECT), then the next, until the queue is
 * empty. Each caller still returns only once its own item is done (or throws what the batch,
 * or its own item, threw), so write-through's guarantee is unchanged; only the number of round
 * trips and commits per item drops under load.
 *
 * <p>Callers block without polling: the batch thread completes their futures, one wake-up
 * each. (Polling waiters, every 2 ms each, cost the members more CPU than the database work.)
 */
final class GroupedCalls<T, R> implements AutoCloseable {

    /** Runs one batch; answers each item's result, or throws the item's own failure. */
    interface Batch<T, R> {
        Function<T, R> run(List<T> items);
    }

    private record Pending<T, R>(T item, CompletableFuture<R> done) {
    }

    private final Batch<T, R> batch;
    private final int maxBatch;
    private final ConcurrentLinkedQueue<Pending<T, R>> queue = new ConcurrentLinkedQueue<>();
    private final AtomicBoolean draining = new AtomicBoolean();
    private final ExecutorService thread;

    /** Batches of at most {@code maxBatch} items, one at a time, on a daemon thread named {@code name}. */
    GroupedCalls(String name, Batch<T, R> batch, int maxBatch) {
        this.batch = batch;
        this.maxBatch = Math.max(1, maxBatch);
        this.thread = Executors.newSingleThreadExecutor(runnable -> {
            Thread t = new Thread(runnable, name);
            t.setDaemon(true);
            return t;
        });
    }

    R call(T item) {
        Pending<T, R> mine = new Pending<>(item, new CompletableFuture<>());
        queue.add(mine);
        if (draining.compareAndSet(false, true)) {
            thread.execute(this::drain);
        }
        try {
            return mine.done.get();
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof RuntimeException runtime) {
                throw runtime;
            }
            throw new IllegalStateException(cause);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for the database", e);
        }
    }

    private void drain() {
        do {
            List<Pending<T, R>> next;
            while (!(next = take()).isEmpty()) {
                run(next);
            }
            draining.set(false);
            // An item queued after the last take but before the flag was cleared found the
            // flag set and scheduled nothing: it is ours.
        } while (!queue.isEmpty() && draining.compareAndSet(false, true));
    }

    private List<Pending<T, R>> take() {
        List<Pending<T, R>> taken = new ArrayList<>();
        Pending<T, R> next;
        while (taken.size() < maxBatch && (next = queue.poll()) != null) {
            taken.add(next);
        }
        return taken;
    }

    private void run(List<Pending<T, R>> pending) {
        Function<T, R> answers;
        try {
            List<T> items = new ArrayList<>(pending.size());
            pending.forEach(p -> items.add(p.item()));
            answers = batch.run(items);
        } catch (RuntimeException | Error e) {
            pending.forEach(p -> p.done().completeExceptionally(e));
            return;
        }
        for (Pending<T, R> p : pending) {
            try {
                p.done().complete(answers.apply(p.item()));
            } catch (RuntimeException e) {
                p.done().completeExceptionally(e);
            }
        }
    }

    /** Stops the thread once the queued batches are done. */
    @Override
    public void close() {
        thread.shutdown();
    }
}
