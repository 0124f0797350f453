package hazelog.mapstore;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;

/**
 * Write-through with fewer transactions: single stores that arrive while the database is busy
 * with earlier ones are written together, in one transaction, by whichever caller gets to
 * write next. Every caller still returns only once its own entry is committed (or throws what
 * the write threw), so write-through's guarantee is unchanged; only the number of round trips
 * and commits per entry drops under load.
 */
final class GroupCommit<K, V> {

    private static final class Pending<K, V> {
        final K key;
        final V value;
        final CompletableFuture<Void> done = new CompletableFuture<>();

        Pending(K key, V value) {
            this.key = key;
            this.value = value;
        }
    }

    private final Function<Map<K, V>, Map<K, RuntimeException>> write;
    private final Semaphore writers;
    private final int maxBatch;
    private final ConcurrentLinkedQueue<Pending<K, V>> queue = new ConcurrentLinkedQueue<>();

    /**
     * At most {@code concurrentWrites} transactions at once, of at most {@code maxBatch} entries.
     * {@code write} commits a batch and answers the entries it refused, each with what its
     * caller throws (the others are committed).
     */
    GroupCommit(Function<Map<K, V>, Map<K, RuntimeException>> write, int concurrentWrites, int maxBatch) {
        this.write = write;
        this.writers = new Semaphore(Math.max(1, concurrentWrites));
        this.maxBatch = Math.max(1, maxBatch);
    }

    void store(K key, V value) {
        Pending<K, V> mine = new Pending<>(key, value);
        queue.add(mine);
        while (true) {
            if (writers.tryAcquire()) {
                try {
                    writeQueued();
                } finally {
                    writers.release();
                }
            }
            try {
                // Written by us just now, or by another writer meanwhile: done. Otherwise every
                // writer is busy: wait a moment for one of them to take it, then try again.
                mine.done.get(mine.done.isDone() ? 0 : 2, TimeUnit.MILLISECONDS);
                return;
            } catch (TimeoutException notYet) {
                // loop
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
    }

    private void writeQueued() {
        List<Pending<K, V>> batch = new ArrayList<>();
        Pending<K, V> next;
        while (batch.size() < maxBatch && (next = queue.poll()) != null) {
            batch.add(next);
        }
        if (batch.isEmpty()) {
            return;
        }
        // One row per key (a later value wins), as a map's store would leave it.
        Map<K, V> entries = new LinkedHashMap<>();
        for (Pending<K, V> pending : batch) {
            entries.put(pending.key, pending.value);
        }
        Map<K, RuntimeException> refused;
        try {
            refused = write.apply(entries);
        } catch (RuntimeException e) {
            batch.forEach(pending -> pending.done.completeExceptionally(e));
            return;
        }
        for (Pending<K, V> pending : batch) {
            RuntimeException failure = refused.get(pending.key);
            if (failure == null) {
                pending.done.complete(null);
            } else {
                pending.done.completeExceptionally(failure);
            }
        }
    }
}
