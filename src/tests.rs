//! Tests that run inside PostgreSQL (`cargo pgrx test`), in the schema `tests`.

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn libtorch_loads_and_computes() {
        let (version, device, threads, check) = Spi::connect(|client| {
            let row = client
                .select(
                    "SELECT libtorch_version, device, threads, \"check\" FROM synth_torch_info()",
                    None,
                    &[],
                )
                .unwrap()
                .first();
            (
                row.get::<String>(1).unwrap(),
                row.get::<String>(2).unwrap(),
                row.get::<i64>(3).unwrap(),
                row.get::<f64>(4).unwrap(),
            )
        });
        assert!(version.unwrap().starts_with("2.11"));
        // The tests run on machines without a GPU.
        assert_eq!(device.unwrap(), "cpu");
        assert_eq!(threads, Some(1));
        assert_eq!(check, Some(14.0));
    }

    #[pg_test]
    fn threads_setting_reaches_libtorch() {
        Spi::run("SET synthsearch.threads = 2").unwrap();
        let threads = Spi::get_one::<i64>("SELECT threads FROM synth_torch_info()").unwrap();
        assert_eq!(threads, Some(2));
    }

    #[pg_test]
    fn embedding_round_trips_and_measures() {
        let text = Spi::get_one::<String>("SELECT '[1, 2.5,-3]'::embedding::text").unwrap();
        assert_eq!(text.as_deref(), Some("[1,2.5,-3]"));
        let d = Spi::get_one::<f64>("SELECT '[0,0]'::embedding <-> '[3,4]'").unwrap();
        assert_eq!(d, Some(5.0));
        let ip = Spi::get_one::<f64>("SELECT '[1,2]'::embedding <#> '[3,4]'").unwrap();
        assert_eq!(ip, Some(-11.0));
    }

    #[pg_test(error = "different embedding dimensions 2 and 3")]
    fn mismatched_dimensions_error() {
        Spi::get_one::<f64>("SELECT '[1,2]'::embedding <-> '[1,2,3]'").unwrap();
    }

    #[pg_test]
    fn without_preloading_the_models_run_in_the_backend() {
        // The test cluster does not preload the library: no model server, backend mode.
        let mode = Spi::get_one::<String>("SHOW synthsearch.mode").unwrap();
        assert_eq!(mode.as_deref(), Some("backend"));
        let servers = Spi::get_one::<i64>("SELECT count(*) FROM synth_model_server").unwrap();
        assert_eq!(servers, Some(0));
    }

    #[pg_test(error = "synthsearch.mode = server needs synthsearch in shared_preload_libraries")]
    fn server_mode_without_preloading_errors() {
        Spi::run("SET synthsearch.mode = server").unwrap();
        Spi::get_one::<String>("SELECT synth_query_text('in black leather'::synthquery)").unwrap();
    }
}
