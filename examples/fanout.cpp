// Fan-out and fan-in: one coroutine calls a function for every input, in
// parallel, and gathers the results. Also shows any() and race().
//
//   ratchet dev http://127.0.0.1:8000    # in another terminal; prints the exports
//   export DISPATCH_API_KEY=... DISPATCH_ENDPOINT_URL=... DISPATCH_VERIFICATION_KEY=...
//   ./example_fanout 100
#include <cstdlib>
#include <iostream>
#include <ratchet/ratchet.hpp>
#include <string>
#include <vector>

int main(int argc, char** argv) try {
  ratchet::Dispatch dispatch;

  auto square = dispatch.function("square", [](int x) { return x * x; });

  auto sum_of_squares = dispatch.function("sum_of_squares", [square](int n) -> ratchet::Task<long> {
    std::vector<ratchet::Call<int>> calls;
    for (int i = 1; i <= n; ++i) calls.push_back(square(i));
    std::vector<int> squares = co_await ratchet::gather(std::move(calls));  // all n, in order
    long sum = 0;
    for (int s : squares) sum += s;
    co_return sum;
  });

  auto first_square = dispatch.function("first_square", [square](int n) -> ratchet::Task<int> {
    std::vector<ratchet::Call<int>> calls;
    for (int i = 1; i <= n; ++i) calls.push_back(square(i));
    co_return co_await ratchet::race(std::move(calls));  // whichever finishes first
  });

  dispatch.start();
  int n = argc > 1 ? std::atoi(argv[1]) : 100;
  std::cout << "sum of the first " << n << " squares: " << sum_of_squares.run(n) << "\n";
  std::cout << "the first square to finish: " << first_square.run(n) << "\n";
  dispatch.stop();
  return 0;
} catch (const std::exception& e) {
  std::cerr << "example_fanout: " << e.what() << "\n";
  return 1;
}
