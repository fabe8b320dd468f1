<?php
/**
 * Admin page "KYC Verifications" and the KYC column on the Users screen.
 *
 * @package KycBridge
 */

namespace KycBridge;

defined( 'ABSPATH' ) || exit;

/**
 * Tabs: an overview (counts with a chart, the funnel), the review queue and the inquiries as
 * list tables paged by the bridge, and one person's detail with the actions on them.
 */
final class Admin_Page {

	const SLUG                = 'kyc-verifications';
	const PER_PAGE            = 20;
	const MAX_PER_PAGE        = 100;
	const PER_PAGE_OPTION     = Lifecycle::PER_PAGE_OPTION;
	const TABS                = array( 'overview', 'queue', 'inquiries', 'person' );

	/**
	 * Hook suffix of the page.
	 *
	 * @var string
	 */
	private static $hook = '';

	/**
	 * Add the menu entry (admin_menu).
	 */
	public static function add_page() {
		self::$hook = (string) add_menu_page(
			__( 'KYC Verifications', 'kyc-bridge' ),
			__( 'KYC Verifications', 'kyc-bridge' ),
			Lifecycle::CAPABILITY,
			self::SLUG,
			array( self::class, 'render' ),
			'dashicons-id-alt',
			71
		);
		add_action( 'load-' . self::$hook, array( self::class, 'load' ) );
	}

	/**
	 * Before the page renders (load-{hook}): the rows-per-page screen option and the table columns.
	 */
	public static function load() {
		add_screen_option(
			'per_page',
			array(
				'label'   => __( 'Rows per page', 'kyc-bridge' ),
				'default' => self::PER_PAGE,
				'option'  => self::PER_PAGE_OPTION,
			)
		);
		add_action( 'admin_notices', array( Admin_Actions::class, 'notices' ) );
	}

	/**
	 * Save the rows-per-page screen option (set_screen_option_{option}), within 1…MAX_PER_PAGE.
	 *
	 * @param mixed  $keep   False (do not save) or the value to save.
	 * @param string $option Option name.
	 * @param mixed  $value  Submitted value.
	 * @return int|false
	 */
	public static function save_per_page( $keep, $option, $value ) {
		unset( $keep );
		if ( self::PER_PAGE_OPTION !== $option ) {
			return false;
		}
		return min( self::MAX_PER_PAGE, max( 1, absint( $value ) ) );
	}

	/**
	 * URL of a tab of the page.
	 *
	 * @param string $tab  Tab.
	 * @param array  $args More query arguments.
	 * @return string
	 */
	public static function url( $tab = '', $args = array() ) {
		$query = array( 'page' => self::SLUG );
		if ( '' !== $tab ) {
			$query['tab'] = $tab;
		}
		return add_query_arg( array_map( 'rawurlencode', array_merge( $query, $args ) ), admin_url( 'admin.php' ) );
	}

	/**
	 * URL of a person's detail view.
	 *
	 * @param string $email Email.
	 * @return string
	 */
	public static function person_url( $email ) {
		return self::url( 'person', array( 'email' => $email ) );
	}

	/**
	 * Styles of the page (admin_enqueue_scripts).
	 *
	 * @param string $hook Current admin page.
	 */
	public static function enqueue( $hook ) {
		if ( '' !== self::$hook && self::$hook === $hook ) {
			wp_enqueue_style( 'kycb-admin', plugins_url( 'assets/css/admin.css', KYCB_PLUGIN_FILE ), array(), VERSION );
		}
	}

	/**
	 * Link to an inquiry in Persona's dashboard.
	 *
	 * @param string $inquiry_id Persona inquiry id (inq_…).
	 * @return string
	 */
	public static function persona_url( $inquiry_id ) {
		$url = 'https://app.withpersona.com/dashboard/inquiries/' . rawurlencode( $inquiry_id );
		/**
		 * Link to an inquiry in Persona's dashboard.
		 *
		 * @param string $url        URL.
		 * @param string $inquiry_id Inquiry id.
		 */
		return (string) apply_filters( 'kycb_persona_dashboard_url', $url, $inquiry_id );
	}

	/**
	 * Translated status names.
	 *
	 * @return array<string, string>
	 */
	public static function status_labels() {
		return array(
			'not_started'  => __( 'Not started', 'kyc-bridge' ),
			'created'      => __( 'Created', 'kyc-bridge' ),
			'pending'      => __( 'Pending', 'kyc-bridge' ),
			'completed'    => __( 'Completed', 'kyc-bridge' ),
			'needs_review' => __( 'Needs review', 'kyc-bridge' ),
			'approved'     => __( 'Approved', 'kyc-bridge' ),
			'declined'     => __( 'Declined', 'kyc-bridge' ),
			'failed'       => __( 'Failed', 'kyc-bridge' ),
			'expired'      => __( 'Expired', 'kyc-bridge' ),
		);
	}

	/**
	 * Translated level names.
	 *
	 * @return array<string, string>
	 */
	public static function level_labels() {
		return array(
			'basic'    => __( 'Basic', 'kyc-bridge' ),
			'enhanced' => __( 'Enhanced', 'kyc-bridge' ),
		);
	}

	/**
	 * A job's (or the CRM sync's) state in words.
	 *
	 * @param string $state none, queued, running, pending, done, skipped, failed or dead.
	 * @return string
	 */
	public static function sync_label( $state ) {
		$labels = array(
			'none'    => __( 'not needed', 'kyc-bridge' ),
			'queued'  => __( 'queued', 'kyc-bridge' ),
			'running' => __( 'running', 'kyc-bridge' ),
			'pending' => __( 'pending', 'kyc-bridge' ),
			'done'    => __( 'done', 'kyc-bridge' ),
			'skipped' => __( 'skipped', 'kyc-bridge' ),
			'failed'  => __( 'failed, retrying', 'kyc-bridge' ),
			'dead'    => __( 'failed', 'kyc-bridge' ),
		);
		return isset( $labels[ $state ] ) ? $labels[ $state ] : $state;
	}

	/**
	 * The filters of the list and the tab, from the query string.
	 *
	 * @return array{tab: string, status: string, user_type: string, level: string, email: string}
	 */
	public static function filters() {
		// phpcs:disable WordPress.Security.NonceVerification.Recommended, KycBridge.Security.NonceVerification.Recommended -- read-only list filters.
		$tab    = isset( $_GET['tab'] ) ? sanitize_key( wp_unslash( $_GET['tab'] ) ) : '';
		$status = isset( $_GET['status'] ) ? sanitize_key( wp_unslash( $_GET['status'] ) ) : '';
		$type   = isset( $_GET['user_type'] ) ? sanitize_key( wp_unslash( $_GET['user_type'] ) ) : '';
		$level  = isset( $_GET['level'] ) ? sanitize_key( wp_unslash( $_GET['level'] ) ) : '';
		$email  = isset( $_GET['email'] ) ? sanitize_email( wp_unslash( $_GET['email'] ) ) : '';
		// phpcs:enable
		return array(
			'tab'       => in_array( $tab, self::TABS, true ) ? $tab : 'overview',
			'status'    => in_array( $status, Status::ALL, true ) ? $status : '',
			'user_type' => in_array( $type, Settings::USER_TYPES, true ) ? $type : '',
			'level'     => isset( self::level_labels()[ $level ] ) ? $level : '',
			'email'     => $email,
		);
	}

	/**
	 * The page.
	 */
	public static function render() {
		if ( ! current_user_can( Lifecycle::CAPABILITY ) ) {
			wp_die( esc_html__( 'Sorry, you are not allowed to see verifications.', 'kyc-bridge' ), 403 );
		}
		$client  = Bridge_Client::from_settings();
		$filters = self::filters();
		echo '<div class="wrap kycb-admin"><h1>' . esc_html__( 'KYC Verifications', 'kyc-bridge' ) . '</h1>';
		self::render_tabs( $filters['tab'] );
		if ( 'person' === $filters['tab'] ) {
			self::render_person( $client, $filters['email'] );
		} elseif ( 'overview' === $filters['tab'] ) {
			self::render_overview( $client );
		} else {
			self::render_list( $client, $filters['tab'] );
		}
		echo '</div>';
	}

	/**
	 * The tab bar.
	 *
	 * @param string $current Current tab.
	 */
	private static function render_tabs( $current ) {
		$tabs = array(
			'overview'  => __( 'Overview', 'kyc-bridge' ),
			'queue'     => __( 'Review queue', 'kyc-bridge' ),
			'inquiries' => __( 'Inquiries', 'kyc-bridge' ),
		);
		echo '<nav class="nav-tab-wrapper kycb-tabs" aria-label="' . esc_attr__( 'Verification views', 'kyc-bridge' ) . '">';
		foreach ( $tabs as $tab => $label ) {
			printf(
				'<a href="%1$s" class="nav-tab%2$s"%3$s>%4$s</a>',
				esc_url( self::url( $tab ) ),
				$tab === $current ? ' nav-tab-active' : '',
				$tab === $current ? ' aria-current="page"' : '',
				esc_html( $label )
			);
		}
		echo '</nav>';
	}

	/**
	 * Counts, funnel, and how many wait for a review.
	 *
	 * @param Bridge_Client $client Bridge client.
	 */
	private static function render_overview( $client ) {
		$stats = $client->stats();
		if ( is_wp_error( $stats ) ) {
			self::bridge_notice( $stats );
			return;
		}
		$waiting = isset( $stats['review_total'] ) ? (int) $stats['review_total'] : 0;
		$overdue = isset( $stats['review_overdue'] ) ? (int) $stats['review_overdue'] : 0;
		echo '<p class="kycb-review-summary">';
		/* translators: 1: cases waiting for a review, 2: of them overdue, 3: the review target per level, e.g. "basic 24 h, enhanced 48 h". */
		echo esc_html( sprintf( __( '%1$s waiting for a review, %2$s of them longer than their target (%3$s).', 'kyc-bridge' ), number_format_i18n( $waiting ), number_format_i18n( $overdue ), self::review_targets_text( $stats ) ) );
		echo ' <a href="' . esc_url( self::url( 'queue' ) ) . '">' . esc_html__( 'Open the review queue', 'kyc-bridge' ) . '</a></p>';
		echo '<div class="kycb-panels">';
		self::render_counts( isset( $stats['counts'] ) && is_array( $stats['counts'] ) ? $stats['counts'] : array() );
		self::render_funnel(
			isset( $stats['funnel'] ) && is_array( $stats['funnel'] ) ? $stats['funnel'] : array(),
			isset( $stats['median_hours_to_decision'] ) ? (float) $stats['median_hours_to_decision'] : null
		);
		echo '</div>';
		if ( current_user_can( Lifecycle::MANAGE_CAPABILITY ) ) {
			echo '<h2>' . esc_html__( 'Failed jobs', 'kyc-bridge' ) . '</h2><p>' . esc_html__( 'CRM syncs and n8n events that failed after every retry wait for an operator. Queue them all again once the cause is fixed:', 'kyc-bridge' ) . '</p>';
			Admin_Actions::form( 'retry_all', '', __( 'Retry all failed jobs', 'kyc-bridge' ) );
		}
	}

	/**
	 * The review target of each level, as the bridge's stats give it ([review] target_hours).
	 *
	 * @param array $stats GET /api/v1/stats.
	 * @return string e.g. "basic: 24 h, enhanced: 48 h"; the single target of an older bridge.
	 */
	private static function review_targets_text( $stats ) {
		$parts  = array();
		$labels = self::level_labels();
		if ( isset( $stats['review_targets'] ) && is_array( $stats['review_targets'] ) ) {
			foreach ( $stats['review_targets'] as $level => $hours ) {
				$label = isset( $labels[ $level ] ) ? $labels[ $level ] : (string) $level;
				/* translators: 1: verification level, 2: hours. */
				$parts[] = sprintf( __( '%1$s: %2$s h', 'kyc-bridge' ), $label, number_format_i18n( (float) $hours ) );
			}
		} elseif ( isset( $stats['review_target_hours'] ) ) {
			/* translators: %s: hours. */
			$parts[] = sprintf( __( '%s h', 'kyc-bridge' ), number_format_i18n( (float) $stats['review_target_hours'] ) );
		}
		return implode( ', ', $parts );
	}

	/**
	 * The review queue or the inquiries as a list table.
	 *
	 * @param Bridge_Client $client Bridge client.
	 * @param string        $tab    queue or inquiries.
	 */
	private static function render_list( $client, $tab ) {
		require_once KYCB_PLUGIN_DIR . 'includes/class-inquiries-table.php';
		$table = new Inquiries_Table( 'queue' === $tab ? Inquiries_Table::QUEUE : Inquiries_Table::ALL, $client, array( 'screen' => '' !== self::$hook ? self::$hook : null ) );
		$table->prepare_items();
		if ( null !== $table->error ) {
			self::bridge_notice( $table->error );
			return;
		}
		if ( 'queue' === $tab ) {
			echo '<p>' . esc_html__( 'Verifications wait here for a manual review in Persona, each against the review target of its level (set in the bridge); overdue cases first.', 'kyc-bridge' ) . '</p>';
		}
		echo '<form method="get" class="kycb-list-form"><input type="hidden" name="page" value="' . esc_attr( self::SLUG ) . '" /><input type="hidden" name="tab" value="' . esc_attr( $tab ) . '" />';
		$table->search_box( __( 'Search name or email', 'kyc-bridge' ), 'kycb-search' );
		$table->display();
		echo '</form>';
	}

	/**
	 * One person: standing, consents, inquiries with their history, jobs with errors, actions.
	 *
	 * @param Bridge_Client $client Bridge client.
	 * @param string        $email  Email.
	 */
	private static function render_person( $client, $email ) {
		echo '<p><a href="' . esc_url( self::url( 'inquiries' ) ) . '">&larr; ' . esc_html__( 'All inquiries', 'kyc-bridge' ) . '</a></p>';
		if ( ! is_email( $email ) ) {
			echo '<div class="notice notice-error"><p>' . esc_html__( 'Not an email address.', 'kyc-bridge' ) . '</p></div>';
			return;
		}
		$person = $client->contact( $email );
		if ( is_wp_error( $person ) ) {
			$data = $person->get_error_data();
			if ( is_array( $data ) && isset( $data['status'] ) && 404 === $data['status'] ) {
				echo '<div class="notice notice-info"><p>' . esc_html__( 'The bridge holds no data for this email.', 'kyc-bridge' ) . '</p></div>';
			} else {
				self::bridge_notice( $person );
			}
			return;
		}
		$labels = self::status_labels();
		$kyc    = isset( $person['kyc'] ) && is_array( $person['kyc'] ) ? $person['kyc'] : array();
		$status = isset( $kyc['status'] ) ? (string) $kyc['status'] : 'not_started';
		$name   = isset( $person['first_name'] ) ? (string) $person['first_name'] : '';
		echo '<section class="kycb-person-view" data-email="' . esc_attr( $email ) . '">';
		echo '<h2>' . esc_html( '' !== $name ? $name . ' <' . $email . '>' : $email ) . '</h2>';
		echo '<p>' . esc_html__( 'KYC status:', 'kyc-bridge' ) . ' <span class="kycb-status kycb-status--' . esc_attr( $status ) . '">' . esc_html( isset( $labels[ $status ] ) ? $labels[ $status ] : $status ) . '</span>';
		if ( ! empty( $person['consent_withdrawn_at'] ) ) {
			echo ' — <strong>' . esc_html__( 'consent withdrawn', 'kyc-bridge' ) . '</strong> ' . esc_html( self::when( (string) $person['consent_withdrawn_at'] ) );
		}
		echo '</p>';

		echo '<div class="kycb-person-actions">';
		if ( current_user_can( Lifecycle::MANAGE_CAPABILITY ) ) {
			Admin_Actions::form( 'resend', $email, __( 'Resend verification link', 'kyc-bridge' ) );
			$dead = isset( $person['dead_jobs'] ) ? (int) $person['dead_jobs'] : 0;
			if ( $dead > 0 ) {
				/* translators: %s: number of failed jobs. */
				Admin_Actions::form( 'retry', $email, sprintf( _n( 'Retry %s failed job', 'Retry %s failed jobs', $dead, 'kyc-bridge' ), number_format_i18n( $dead ) ) );
			}
		}
		if ( current_user_can( 'export_others_personal_data' ) ) {
			Admin_Actions::form( 'export', $email, __( 'Export personal data', 'kyc-bridge' ) );
		}
		if ( current_user_can( 'erase_others_personal_data' ) ) {
			Admin_Actions::form( 'erase', $email, __( 'Erase personal data', 'kyc-bridge' ), 'button button-link-delete' );
		}
		echo '</div>';

		$inquiries = isset( $person['inquiries'] ) && is_array( $person['inquiries'] ) ? $person['inquiries'] : array();
		echo '<h3>' . esc_html__( 'Inquiries and status history', 'kyc-bridge' ) . '</h3>';
		if ( ! $inquiries ) {
			echo '<p>' . esc_html__( 'No inquiry yet.', 'kyc-bridge' ) . '</p>';
		}
		foreach ( $inquiries as $inquiry ) {
			$id   = isset( $inquiry['inquiry_id'] ) ? (string) $inquiry['inquiry_id'] : '';
			$now  = isset( $inquiry['status'] ) ? (string) $inquiry['status'] : '';
			$sync = isset( $inquiry['crm_sync'] ) ? (string) $inquiry['crm_sync'] : '';
			echo '<div class="kycb-inquiry" data-inquiry-id="' . esc_attr( $id ) . '"><h4><a href="' . esc_url( self::persona_url( $id ) ) . '" target="_blank" rel="noopener noreferrer"><code>' . esc_html( $id ) . '</code></a> — ' . esc_html( isset( $labels[ $now ] ) ? $labels[ $now ] : $now ) . ' (' . esc_html( self::type_label( isset( $inquiry['user_type'] ) ? (string) $inquiry['user_type'] : '' ) ) . ')</h4>';
			/* translators: %s: state of the CRM sync. */
			echo '<p>' . esc_html( sprintf( __( 'CRM sync: %s', 'kyc-bridge' ), self::sync_label( $sync ) ) );
			if ( ! empty( $inquiry['crm_sync_error'] ) ) {
				echo ' — <span class="kycb-error">' . esc_html( (string) $inquiry['crm_sync_error'] ) . '</span>';
			}
			if ( current_user_can( Lifecycle::MANAGE_CAPABILITY ) ) {
				echo ' ';
				Admin_Actions::form( 'resync', $id, __( 'Re-sync to CRM', 'kyc-bridge' ), 'button button-small' );
			}
			echo '</p><table class="widefat striped kycb-history"><thead><tr><th scope="col">' . esc_html__( 'When (Persona)', 'kyc-bridge' ) . '</th><th scope="col">' . esc_html__( 'Event', 'kyc-bridge' ) . '</th><th scope="col">' . esc_html__( 'Status', 'kyc-bridge' ) . '</th><th scope="col">' . esc_html__( 'Applied', 'kyc-bridge' ) . '</th></tr></thead><tbody>';
			foreach ( isset( $inquiry['history'] ) && is_array( $inquiry['history'] ) ? $inquiry['history'] : array() as $step ) {
				$step_status = isset( $step['status'] ) ? (string) $step['status'] : '';
				printf(
					'<tr><td>%1$s</td><td><code>%2$s</code></td><td>%3$s</td><td>%4$s</td></tr>',
					esc_html( self::when( isset( $step['at'] ) ? (string) $step['at'] : '' ) ),
					esc_html( isset( $step['event'] ) ? (string) $step['event'] : '' ),
					esc_html( isset( $labels[ $step_status ] ) ? $labels[ $step_status ] : $step_status ),
					! empty( $step['applied'] ) ? esc_html__( 'yes', 'kyc-bridge' ) : esc_html__( 'no (older than the state)', 'kyc-bridge' )
				);
			}
			echo '</tbody></table></div>';
		}

		echo '<h3>' . esc_html__( 'Consents', 'kyc-bridge' ) . '</h3>';
		$consents = isset( $person['consents'] ) && is_array( $person['consents'] ) ? $person['consents'] : array();
		if ( ! $consents ) {
			echo '<p>' . esc_html__( 'No consent recorded through this site or the bridge (the person arrived by a Persona webhook).', 'kyc-bridge' ) . '</p>';
		} else {
			echo '<table class="widefat striped kycb-consents"><thead><tr><th scope="col">' . esc_html__( 'Given', 'kyc-bridge' ) . '</th><th scope="col">' . esc_html__( 'User type', 'kyc-bridge' ) . '</th><th scope="col">' . esc_html__( 'Text version', 'kyc-bridge' ) . '</th><th scope="col">' . esc_html__( 'Withdrawn', 'kyc-bridge' ) . '</th></tr></thead><tbody>';
			foreach ( $consents as $consent ) {
				printf(
					'<tr><td>%1$s</td><td>%2$s</td><td>%3$s</td><td>%4$s</td></tr>',
					esc_html( self::when( isset( $consent['created_at'] ) ? (string) $consent['created_at'] : '' ) ),
					esc_html( self::type_label( isset( $consent['user_type'] ) ? (string) $consent['user_type'] : '' ) ),
					esc_html( isset( $consent['text_version'] ) ? (string) $consent['text_version'] : '' ),
					esc_html( self::when( isset( $consent['withdrawn_at'] ) ? (string) $consent['withdrawn_at'] : '' ) )
				);
			}
			echo '</tbody></table>';
		}

		echo '<h3>' . esc_html__( 'CRM syncs and n8n events', 'kyc-bridge' ) . '</h3>';
		$jobs = isset( $person['jobs'] ) && is_array( $person['jobs'] ) ? $person['jobs'] : array();
		echo '<table class="widefat striped kycb-jobs"><thead><tr><th scope="col">' . esc_html__( 'Job', 'kyc-bridge' ) . '</th><th scope="col">' . esc_html__( 'State', 'kyc-bridge' ) . '</th><th scope="col">' . esc_html__( 'Attempts', 'kyc-bridge' ) . '</th><th scope="col">' . esc_html__( 'Last error', 'kyc-bridge' ) . '</th><th scope="col">' . esc_html__( 'Updated', 'kyc-bridge' ) . '</th></tr></thead><tbody>';
		if ( ! $jobs ) {
			echo '<tr><td colspan="5">' . esc_html__( 'None.', 'kyc-bridge' ) . '</td></tr>';
		}
		foreach ( $jobs as $job ) {
			$state = isset( $job['state'] ) ? (string) $job['state'] : '';
			$what  = isset( $job['kind'] ) ? (string) $job['kind'] : '';
			if ( ! empty( $job['event_type'] ) ) {
				$what .= ' ' . (string) $job['event_type'];
			}
			printf(
				'<tr class="kycb-job kycb-job--%1$s" data-job-id="%2$d"><td><code>%3$s</code></td><td>%4$s</td><td>%5$d / %6$d</td><td>%7$s</td><td>%8$s</td></tr>',
				esc_attr( $state ),
				isset( $job['id'] ) ? (int) $job['id'] : 0,
				esc_html( $what ),
				esc_html( self::sync_label( $state ) ),
				isset( $job['attempts'] ) ? (int) $job['attempts'] : 0,
				isset( $job['max_attempts'] ) ? (int) $job['max_attempts'] : 0,
				esc_html( isset( $job['last_error'] ) ? (string) $job['last_error'] : '' ),
				esc_html( self::when( isset( $job['updated_at'] ) ? (string) $job['updated_at'] : '' ) )
			);
		}
		echo '</tbody></table></section>';
	}

	/**
	 * Say why the bridge gave no data.
	 *
	 * @param \WP_Error $error Error.
	 */
	private static function bridge_notice( $error ) {
		echo '<div class="notice notice-error"><p>' . esc_html( $error->get_error_message() ) . '</p>';
		if ( current_user_can( 'manage_options' ) ) {
			echo '<p><a href="' . esc_url( admin_url( 'options-general.php?page=' . Settings::PAGE ) ) . '">' . esc_html__( 'Check the KYC Bridge settings', 'kyc-bridge' ) . '</a></p>';
		}
		echo '</div>';
	}

	/**
	 * Counts per status: a table and an inline SVG bar chart (no external library).
	 *
	 * @param array<string, int> $counts Status → count.
	 */
	private static function render_counts( $counts ) {
		$labels = self::status_labels();
		$rows   = array();
		foreach ( $labels as $status => $label ) {
			if ( 'not_started' !== $status ) {
				$rows[ $status ] = isset( $counts[ $status ] ) ? (int) $counts[ $status ] : 0;
			}
		}
		$max    = max( 1, max( $rows ) );
		$bar_h  = 22;
		$height = count( $rows ) * $bar_h + 4;
		$parts  = array();
		foreach ( $rows as $status => $count ) {
			/* translators: 1: status name, 2: number of inquiries. */
			$parts[] = sprintf( __( '%1$s: %2$d', 'kyc-bridge' ), $labels[ $status ], $count );
		}

		echo '<section class="kycb-panel kycb-counts"><h2>' . esc_html__( 'Verifications per status', 'kyc-bridge' ) . '</h2>';
		printf(
			'<svg class="kycb-chart" width="420" height="%1$d" viewBox="0 0 420 %1$d" role="img" aria-labelledby="kycb-chart-title kycb-chart-desc"><title id="kycb-chart-title">%2$s</title><desc id="kycb-chart-desc">%3$s</desc>',
			(int) $height,
			esc_html__( 'Verifications per status', 'kyc-bridge' ),
			esc_html( implode( ', ', $parts ) )
		);
		$y = 2;
		foreach ( $rows as $status => $count ) {
			$width = $count > 0 ? max( 2, (int) round( 250 * $count / $max ) ) : 0;
			printf(
				'<g class="kycb-bar kycb-bar--%1$s" data-status="%1$s" data-count="%2$d"><text x="0" y="%3$d" class="kycb-bar-label">%4$s</text><rect x="110" y="%5$d" width="%6$d" height="%7$d" rx="2"></rect><text x="%8$d" y="%3$d" class="kycb-bar-value">%2$d</text></g>',
				esc_attr( $status ),
				(int) $count,
				(int) ( $y + 15 ),
				esc_html( $labels[ $status ] ),
				(int) $y,
				(int) $width,
				(int) ( $bar_h - 6 ),
				(int) ( 116 + $width )
			);
			$y += $bar_h;
		}
		echo '</svg>';
		echo '<table class="widefat striped kycb-count-table screen-reader-text"><caption>' . esc_html__( 'Verifications per status', 'kyc-bridge' ) . '</caption><tbody>';
		foreach ( $rows as $status => $count ) {
			printf( '<tr><th scope="row">%1$s</th><td>%2$s</td></tr>', esc_html( $labels[ $status ] ), esc_html( number_format_i18n( $count ) ) );
		}
		echo '</tbody></table></section>';
	}

	/**
	 * The funnel consented → started → completed → approved, on people: each step a subset of the
	 * one before, with its share of the previous step; people known only from a webhook beside it.
	 *
	 * @param array      $funnel Step → count, conversion, without_consent.
	 * @param float|null $median Median hours to a decision.
	 */
	private static function render_funnel( $funnel, $median ) {
		$steps      = array(
			'consented' => __( 'Consented', 'kyc-bridge' ),
			'started'   => __( 'Started', 'kyc-bridge' ),
			'completed' => __( 'Completed', 'kyc-bridge' ),
			'approved'  => __( 'Approved', 'kyc-bridge' ),
		);
		$conversion = isset( $funnel['conversion'] ) && is_array( $funnel['conversion'] ) ? $funnel['conversion'] : array();
		$base       = max( 1, isset( $funnel['consented'] ) ? (int) $funnel['consented'] : 0 );
		echo '<section class="kycb-panel kycb-funnel"><h2>' . esc_html__( 'Funnel (people)', 'kyc-bridge' ) . '</h2><ol>';
		foreach ( $steps as $key => $label ) {
			$count = isset( $funnel[ $key ] ) ? (int) $funnel[ $key ] : 0;
			$share = '';
			if ( isset( $conversion[ $key ] ) && null !== $conversion[ $key ] ) {
				/* translators: %s: percentage of the previous step. */
				$share = sprintf( __( '%s%% of the step before', 'kyc-bridge' ), number_format_i18n( (float) $conversion[ $key ], 1 ) );
			}
			printf(
				'<li class="kycb-funnel-step" data-step="%1$s"><span class="kycb-funnel-label">%2$s</span> <strong class="kycb-funnel-count">%3$s</strong> <span class="kycb-funnel-share">%4$s</span> <span class="kycb-funnel-bar" style="width:%5$d%%" aria-hidden="true"></span></li>',
				esc_attr( $key ),
				esc_html( $label ),
				esc_html( number_format_i18n( $count ) ),
				esc_html( $share ),
				(int) min( 100, round( 100 * $count / $base ) )
			);
		}
		echo '</ol>';
		$outside = isset( $funnel['without_consent'] ) ? (int) $funnel['without_consent'] : 0;
		if ( $outside > 0 ) {
			/* translators: %s: number of people. */
			echo '<p class="kycb-funnel-outside">' . esc_html( sprintf( _n( 'Not in the funnel: %s person known only from a Persona webhook (no consent recorded here).', 'Not in the funnel: %s people known only from a Persona webhook (no consent recorded here).', $outside, 'kyc-bridge' ), number_format_i18n( $outside ) ) ) . '</p>';
		}
		if ( null !== $median ) {
			if ( $median < 1 ) {
				/* translators: %s: minutes. */
				$text = sprintf( __( 'Median time from the start to a decision: %s minutes.', 'kyc-bridge' ), number_format_i18n( max( 1, round( $median * 60 ) ) ) );
			} else {
				/* translators: %s: hours. */
				$text = sprintf( __( 'Median time from the start to a decision: %s hours.', 'kyc-bridge' ), number_format_i18n( $median, 1 ) );
			}
			echo '<p class="kycb-median">' . esc_html( $text ) . '</p>';
		}
		echo '</section>';
	}

	/**
	 * A user type's label.
	 *
	 * @param string $type User type.
	 * @return string
	 */
	public static function type_label( $type ) {
		$labels = Settings::user_type_labels();
		return isset( $labels[ $type ] ) ? $labels[ $type ] : $type;
	}

	/**
	 * An ISO time of the bridge in the site's format and time zone.
	 *
	 * @param string $iso ISO 8601 time.
	 * @return string
	 */
	public static function when( $iso ) {
		$time = '' !== $iso ? strtotime( $iso ) : false;
		if ( ! $time ) {
			return '';
		}
		return wp_date( get_option( 'date_format' ) . ' ' . get_option( 'time_format' ), $time );
	}

	/**
	 * Add the KYC column (manage_users_columns) for those who may see verifications.
	 *
	 * @param array $columns Columns.
	 * @return array
	 */
	public static function users_column( $columns ) {
		if ( current_user_can( Lifecycle::CAPABILITY ) ) {
			$columns['kycb_kyc'] = __( 'KYC', 'kyc-bridge' );
		}
		return $columns;
	}

	/**
	 * The KYC column's value: the bridge's status of the user (cached).
	 *
	 * @param string $output  Existing output.
	 * @param string $column  Column name.
	 * @param int    $user_id User id.
	 * @return string
	 */
	public static function users_column_value( $output, $column, $user_id ) {
		if ( 'kycb_kyc' !== $column || ! current_user_can( Lifecycle::CAPABILITY ) ) {
			return $output;
		}
		self::prefetch_listed_users();
		$answer = Kyc_Lookup::for_user( (int) $user_id );
		if ( is_wp_error( $answer ) ) {
			return '<span class="kycb-status kycb-status--unknown" title="' . esc_attr( $answer->get_error_message() ) . '">' . esc_html__( 'unknown', 'kyc-bridge' ) . '</span>';
		}
		$labels = self::status_labels();
		$status = (string) $answer['status'];
		$text   = isset( $labels[ $status ] ) ? $labels[ $status ] : $status;
		if ( ! empty( $answer['level'] ) && 'approved' === $status ) {
			$text .= ' (' . $answer['level'] . ')';
		}
		return '<span class="kycb-status kycb-status--' . esc_attr( $status ) . '">' . esc_html( $text ) . '</span>';
	}

	/**
	 * Ask the bridge once for every user on the Users screen (GET /api/v1/contacts/kyc), instead of
	 * once per row; the answers land in the lookup cache the column reads.
	 */
	private static function prefetch_listed_users() {
		static $done = null;
		$table       = isset( $GLOBALS['wp_list_table'] ) ? $GLOBALS['wp_list_table'] : null;
		if ( ! $table instanceof \WP_Users_List_Table || ! is_array( $table->items ) || $done === $table ) {
			return;
		}
		$done = $table;
		$emails = array();
		foreach ( $table->items as $user ) {
			if ( $user instanceof \WP_User && is_email( $user->user_email ) ) {
				$emails[] = $user->user_email;
			}
		}
		Kyc_Lookup::prefetch( $emails );
	}
}
