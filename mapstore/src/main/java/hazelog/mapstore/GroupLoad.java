package hazelog.mapstore;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;

/**
 * Read-through with fewer round trips: a put-if-absent on a map with a loader loads a missing
 * key; the few loads that read the table (keys a store found there, see PostgresMessageStore)
 * would otherwise cost a SELECT each. Single loads that arrive while others are being
 * read go together in the next SELECT, by whichever caller gets to read next; each caller
 * gets its own key's value (or null), or what the read threw. The same scheme as
 * {@link GroupCommit}, for reads.
 */
final class GroupLoad<K, V> {

    private static final class Pending<K, V> {
        final K key;
        final CompletableFuture<V> done = new CompletableFuture<>();

        Pending(K key) {
            this.key = key;
        }
    }

    private final Function<Set<K>, Map<K, V>> read;
    private final Semaphore readers;
    private final int maxBatch;
    private final ConcurrentLinkedQueue<Pending<K, V>> queue = new ConcurrentLinkedQueue<>();

    /** At most {@code concurrentReads} reads at once, of at most {@code maxBatch} keys. */
    GroupLoad(Function<Set<K>, Map<K, V>> read, int concurrentReads, int maxBatch) {
        this.read = read;
        this.readers = new Semaphore(Math.max(1, concurrentReads));
        this.maxBatch = Math.max(1, maxBatch);
    }

    V load(K key) {
        Pending<K, V> mine = new Pending<>(key);
        queue.add(mine);
        while (true) {
            if (readers.tryAcquire()) {
                try {
                    readQueued();
                } finally {
                    readers.release();
                }
            }
            try {
                // Read by us just now, or by another reader meanwhile: done. Otherwise every
                // reader is busy: wait a moment for one of them to take it, then try again.
                return mine.done.get(mine.done.isDone() ? 0 : 2, TimeUnit.MILLISECONDS);
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

    private void readQueued() {
        List<Pending<K, V>> batch = new ArrayList<>();
        Pending<K, V> next;
        while (batch.size() < maxBatch && (next = queue.poll()) != null) {
            batch.add(next);
        }
        if (batch.isEmpty()) {
            return;
        }
        Set<K> keys = new LinkedHashSet<>();
        for (Pending<K, V> pending : batch) {
            keys.add(pending.key);
        }
        Map<K, V> found;
        try {
            found = read.apply(keys);
        } catch (RuntimeException e) {
            batch.forEach(pending -> pending.done.completeExceptionally(e));
            return;
        }
        batch.forEach(pending -> pending.done.complete(found.get(pending.key)));
    }
}
