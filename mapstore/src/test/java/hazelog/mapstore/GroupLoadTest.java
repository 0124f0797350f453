package hazelog.mapstore;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class GroupLoadTest {

    @Test
    void loadsArrivingWhileOneIsReadShareTheNextReadAndEachGetsItsOwnValue() throws Exception {
        CountDownLatch firstReadStarted = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        AtomicInteger reads = new AtomicInteger();
        List<Set<Integer>> batches = new ArrayList<>();
        GroupLoad<Integer, String> loads = new GroupLoad<>(keys -> {
            synchronized (batches) {
                batches.add(Set.copyOf(keys));
            }
            if (reads.incrementAndGet() == 1) {
                firstReadStarted.countDown();
                try {
                    release.await(30, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            Map<Integer, String> found = new HashMap<>();
            for (int key : keys) {
                if (key % 2 == 0) { // odd keys are not stored
                    found.put(key, "v" + key);
                }
            }
            return found;
        }, 1, 500);

        ExecutorService pool = Executors.newFixedThreadPool(21);
        try {
            Future<String> first = pool.submit(() -> loads.load(0));
            assertTrue(firstReadStarted.await(30, TimeUnit.SECONDS));
            List<Future<String>> others = new ArrayList<>();
            for (int key = 1; key <= 20; key++) {
                int k = key;
                others.add(pool.submit(() -> loads.load(k)));
            }
            Thread.sleep(200); // all 20 queued behind the read in progress
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
        // The 20 waiting loads went together: 2 reads, not 21.
        assertEquals(2, reads.get(), batches.toString());
    }

    @Test
    void aFailedReadFailsEveryLoadItCarried() {
        IllegalStateException down = new IllegalStateException("PostgreSQL unavailable");
        GroupLoad<Integer, String> loads = new GroupLoad<>(keys -> {
            throw down;
        }, 1, 500);
        assertSame(down, assertThrows(IllegalStateException.class, () -> loads.load(1)));
    }
}
