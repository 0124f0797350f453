package hazelog.mapstore;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class GroupedCallsTest {

    @Test
    void callsArrivingWhileABatchRunsShareTheNextAndEachGetsItsOwnAnswer() throws Exception {
        CountDownLatch firstBatchStarted = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        List<List<Integer>> batches = new ArrayList<>();
        try (GroupedCalls<Integer, String> calls = new GroupedCalls<>("test-batches", items -> {
            synchronized (batches) {
                batches.add(List.copyOf(items));
            }
            firstBatchStarted.countDown();
            try {
                release.await(30, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return key -> key % 2 == 0 ? "v" + key : null; // odd keys are not stored
        }, 500)) {
            ExecutorService pool = Executors.newFixedThreadPool(21);
            try {
                Future<String> first = pool.submit(() -> calls.call(0));
                assertTrue(firstBatchStarted.await(30, TimeUnit.SECONDS));
                List<Future<String>> others = new ArrayList<>();
                for (int key = 1; key <= 20; key++) {
                    int k = key;
                    others.add(pool.submit(() -> calls.call(k)));
                }
                Thread.sleep(200); // all 20 queued behind the batch in progress
                release.countDown();
                assertEquals("v0", first.get(30, TimeUnit.SECONDS));
                for (int key = 1; key <= 20; key++) {
                    String value = others.get(key - 1).get(30, TimeUnit.SECONDS);
                    if (key % 2 == 0) {
                        assertEquals("v" + key, value);
                    } else {
                        assertNull(value);
                    }
                }
            } finally {
                pool.shutdownNow();
            }
        }
        // The 20 waiting calls went together: 2 batches, not 21.
        assertEquals(2, batches.size(), batches.toString());
        assertEquals(20, batches.get(1).size(), batches.toString());
    }

    @Test
    void aFailedBatchFailsEveryCallItCarried() {
        IllegalStateException down = new IllegalStateException("PostgreSQL unavailable");
        try (GroupedCalls<Integer, String> calls = new GroupedCalls<>("test-down", items -> {
            throw down;
        }, 500)) {
            assertSame(down, assertThrows(IllegalStateException.class, () -> calls.call(1)));
            // The thread goes on serving after a failed batch.
            assertSame(down, assertThrows(IllegalStateException.class, () -> calls.call(2)));
        }
    }

    @Test
    void anItemRefusedInACommittedBatchFailsItsCallAlone() throws Exception {
        IllegalArgumentException refused = new IllegalArgumentException("already stored with other text");
        try (GroupedCalls<Integer, String> calls = new GroupedCalls<>("test-refused", items -> key -> {
            if (key == 7) {
                throw refused;
            }
            return "ok" + key;
        }, 500)) {
            assertSame(refused, assertThrows(IllegalArgumentException.class, () -> calls.call(7)));
            assertEquals("ok8", calls.call(8));
        }
    }

    @Test
    void manyConcurrentCallersAllGetAnswersInFewerBatchesThanCalls() throws Exception {
        List<Integer> sizes = new ArrayList<>();
        try (GroupedCalls<Integer, Integer> calls = new GroupedCalls<>("test-many", items -> {
            synchronized (sizes) {
                sizes.add(items.size());
            }
            try {
                Thread.sleep(2); // a commit's round trip
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return key -> key * 2;
        }, 500)) {
            ExecutorService pool = Executors.newFixedThreadPool(32);
            try {
                List<Future<Integer>> answers = new ArrayList<>();
                for (int i = 0; i < 2000; i++) {
                    int k = i;
                    answers.add(pool.submit(() -> calls.call(k)));
                }
                for (int i = 0; i < 2000; i++) {
                    assertEquals(2 * i, answers.get(i).get(30, TimeUnit.SECONDS));
                }
            } finally {
                pool.shutdownNow();
            }
        }
        assertEquals(2000, sizes.stream().mapToInt(Integer::intValue).sum());
        assertTrue(sizes.size() < 2000, "every call ran alone: " + sizes.size() + " batches");
    }
}
